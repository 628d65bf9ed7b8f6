"""The SDK clients of the cloud providers: their pool sizes, timeouts and rotation.

Each cloud SDK gets a small rotation of clients (one per 25 calls, see ``media.clients``), shared by every
call of the process so TLS connections stay warm, with its own retries off and explicit timeouts: the
adapters' stage budgets decide, not SDK defaults of several minutes. Split from ``web.providers`` so the
engine choices (``web.stt_choice``, ``web.llm_tts_choice``) can build clients without importing it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx2
from elevenlabs.client import AsyncElevenLabs
from openai import AsyncOpenAI, DefaultAsyncHttpxClient, Timeout

from media.clients import KEEPALIVE_S, OneWriteTransport, Rotation, clients_for
from web.settings import Settings

if TYPE_CHECKING:
    from web.providers import Providers

CONNECT_TIMEOUT_S = 2.0
"""A TCP+TLS handshake slower than this will not make any budget; fail fast and let the budget retry."""


def pool_limits(settings: Settings) -> tuple[int, int]:
    """(connections, kept-alive connections) for each client of a provider's rotation.

    A call holds at most one request per provider at a time, plus a speculative STT request or the next
    sentence's TTS overlapping it. With the HTTP clients' defaults (100 connections, 20 or 100 kept alive)
    two hundred calls queued for a connection past the TTS budget, and each burst above the keep-alive
    count was torn down and reconnected.
    """
    calls = -(-settings.max_concurrent_calls // clients_for(settings.max_concurrent_calls))
    return 2 * calls + 10, calls + 10


def openai_clients(
    settings: Settings, p: Providers, *, api_key: str = "", base_url: str = ""
) -> Rotation[AsyncOpenAI]:
    most, kept = pool_limits(settings)
    clients = []
    for _ in range(clients_for(settings.max_concurrent_calls)):
        client = AsyncOpenAI(
            api_key=api_key or settings.openai_api_key.get_secret_value(),
            base_url=base_url or settings.openai_base_url or None,
            max_retries=0,
            timeout=Timeout(
                max(settings.llm_total_timeout_s, settings.stt_timeout_s), connect=CONNECT_TIMEOUT_S
            ),
            http_client=DefaultAsyncHttpxClient(
                transport=OneWriteTransport(
                    limits=httpx2.Limits(
                        max_connections=most, max_keepalive_connections=kept, keepalive_expiry=KEEPALIVE_S
                    )
                )
            ),
        )
        p.closers.append(client.close)
        clients.append(prime_openai(client))
    return Rotation(clients)


def prime_openai(client: AsyncOpenAI) -> AsyncOpenAI:
    """Loads the SDK's resources for the requests a call makes, now, at start-up.

    The SDK imports ``chat`` and ``audio`` (and with them a few dozen pydantic models) on their first use:
    40-50 ms of CPU, so the first caller after every start waited that much longer for its first reply,
    and every other call on the event loop with it. Touching them here moves that into the start-up.
    """
    _ = (
        client.chat.completions.with_streaming_response,
        client.audio.transcriptions,
        client.models,
    )
    return client


def prime_elevenlabs(client: AsyncElevenLabs) -> AsyncElevenLabs:
    """As ``prime_openai``: ``models`` (the ring-time warm-up's request) is imported on first use, about
    12 ms, which the first call's ``/voice`` paid on the event loop."""
    _ = (client.text_to_speech.with_raw_response, client.models)
    return client
