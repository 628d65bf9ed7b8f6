"""Language model and text-to-speech choice: OpenAI with its failover, or the scripted FAQ; ElevenLabs
(socket or HTTP) with eSpeak NG behind it, or eSpeak NG alone.

Split from ``web.providers``, which calls ``pick_llm`` and ``pick_tts``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
from elevenlabs.client import AsyncElevenLabs
from openai import AsyncOpenAI

from dialogue.llm import LanguageModel
from dialogue.llm_failover import FailoverLanguageModel
from dialogue.llm_openai import OpenAILanguageModel
from dialogue.llm_scripted import ScriptedLanguageModel
from dialogue.profile import BusinessProfile
from media.clients import KEEPALIVE_S, Rotation, clients_for
from media.tts_elevenlabs import ElevenLabsTextToSpeech
from media.tts_elevenlabs_ws import ElevenLabsWebSocketTextToSpeech
from media.tts_espeak import EspeakTextToSpeech
from web.provider_clients import CONNECT_TIMEOUT_S, openai_clients, pool_limits, prime_elevenlabs
from web.settings import Settings

if TYPE_CHECKING:
    from web.providers import Providers


def pick_llm(
    settings: Settings, p: Providers, client: Rotation[AsyncOpenAI] | None, profile: BusinessProfile
) -> None:
    choice = settings.llm_provider
    if choice in ("auto", "openai") and client is not None:
        failover = settings.llm_hedge_after_s > 0 or _llm_fallback_configured(settings)
        primary = OpenAILanguageModel(
            client,
            model=settings.openai_llm_model,
            first_token_timeout_s=settings.llm_first_token_timeout_s,
            total_timeout_s=settings.llm_total_timeout_s,
            # With a fallback, a failed first attempt goes straight to it instead of the same model again.
            max_attempts=1 if failover else 2,
        )
        p.warmup.add(primary.warm)
        p.llm = _llm_failover(settings, p, client, primary)
        return
    if choice == "openai":
        p.missing.append("LLM_PROVIDER=openai but OPENAI_API_KEY is not set: no language model")
        return
    p.llm = ScriptedLanguageModel(profile)
    if choice == "auto":
        p.missing.append("OPENAI_API_KEY is not set: answers come from the business profile's FAQ (scripted)")


def _llm_fallback_configured(settings: Settings) -> bool:
    return bool(
        settings.llm_fallback_model
        or settings.llm_fallback_base_url
        or settings.llm_fallback_api_key.get_secret_value()
    )


def _llm_failover(
    settings: Settings, p: Providers, client: Rotation[AsyncOpenAI], primary: OpenAILanguageModel
) -> LanguageModel:
    """The primary model, then the fallback model or endpoint (or the same model again) before any token.

    Another endpoint gets clients of its own; the same endpoint shares the primary's rotation, whose next
    client is another connection pool, so a hedge never queues behind the hung request.
    """
    fallback_model = settings.llm_fallback_model or settings.openai_llm_model
    fallback_key = settings.llm_fallback_api_key.get_secret_value()
    other_endpoint = bool(settings.llm_fallback_base_url or fallback_key)
    if settings.llm_hedge_after_s <= 0 and not _llm_fallback_configured(settings):
        return primary
    clients = (
        openai_clients(settings, p, api_key=fallback_key, base_url=settings.llm_fallback_base_url)
        if other_endpoint
        else client
    )
    fallback = OpenAILanguageModel(
        clients,
        model=fallback_model,
        first_token_timeout_s=settings.llm_first_token_timeout_s,
        total_timeout_s=settings.llm_total_timeout_s,
    )
    if other_endpoint:
        fallback.name = f"{fallback.name}@fallback-endpoint"
    # Without a hedge deadline the fallback is asked only after the primary failed.
    hedge_after_s = settings.llm_hedge_after_s or settings.llm_total_timeout_s
    return FailoverLanguageModel([primary, fallback], hedge_after_s=hedge_after_s)


def pick_tts(settings: Settings, p: Providers) -> None:
    choice = settings.tts_provider
    espeak_problem = EspeakTextToSpeech.available()
    espeak = EspeakTextToSpeech() if espeak_problem is None else None
    key = settings.elevenlabs_api_key.get_secret_value()
    if choice in ("auto", "elevenlabs") and key and settings.elevenlabs_transport == "ws":
        p.tts = ElevenLabsWebSocketTextToSpeech(
            api_key=key,
            base_url=settings.elevenlabs_base_url,
            voice_id=settings.elevenlabs_voice_id,
            model_id=settings.elevenlabs_model,
            first_byte_timeout_s=settings.tts_first_byte_timeout_s,
        )
        p.backup_tts = espeak
        return
    if choice in ("auto", "elevenlabs") and key:
        most, kept = pool_limits(settings)
        clients = []
        for _ in range(clients_for(settings.max_concurrent_calls)):
            http = httpx.AsyncClient(
                timeout=httpx.Timeout(30.0, connect=CONNECT_TIMEOUT_S),
                follow_redirects=True,
                limits=httpx.Limits(
                    max_connections=most, max_keepalive_connections=kept, keepalive_expiry=KEEPALIVE_S
                ),
            )
            client = AsyncElevenLabs(
                api_key=key, base_url=settings.elevenlabs_base_url or None, httpx_client=http
            )
            clients.append(prime_elevenlabs(client))
            p.closers.append(http.aclose)
        p.tts = ElevenLabsTextToSpeech(
            Rotation(clients),
            voice_id=settings.elevenlabs_voice_id,
            model_id=settings.elevenlabs_model,
            first_byte_timeout_s=settings.tts_first_byte_timeout_s,
        )
        p.warmup.add(p.tts.warm)
        p.backup_tts = espeak
        return
    if choice == "elevenlabs":
        p.missing.append("TTS_PROVIDER=elevenlabs but ELEVENLABS_API_KEY is not set: no text-to-speech")
        return
    if espeak is None:
        p.missing.append(f"no text-to-speech: ELEVENLABS_API_KEY is not set and {espeak_problem}")
        return
    p.tts = espeak
    if choice == "auto":
        p.missing.append("ELEVENLABS_API_KEY is not set: the bot speaks with the local eSpeak NG voice")
