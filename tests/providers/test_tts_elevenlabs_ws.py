"""ElevenLabs stream-input adapter against the loopback fake over a real WebSocket (``websockets`` client).

What the socket got (initial message, text chunks, flushes, the closing empty text) is read back from the
fake's request log; audio is compared with what the HTTP route renders for the same text, so both
transports are known to speak the same bytes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import pytest
from elevenlabs.client import AsyncElevenLabs

from fakes.behaviour import Fault
from fakes.server import FakeEndpoints
from media.errors import ProviderError
from media.tts_elevenlabs import ElevenLabsTextToSpeech
from media.tts_elevenlabs_ws import ElevenLabsWebSocketTextToSpeech
from tests.providers.conftest import ELEVENLABS_KEY

pytestmark = pytest.mark.timeout(30)

SENTENCE = "Gerne helfe ich Ihnen dabei."
GUARD_S = 10.0
"""Only a guard against a hung test; every wait below ends on an event, not on this."""


def _tts(fake: FakeEndpoints, **kwargs: Any) -> ElevenLabsWebSocketTextToSpeech:
    options: dict[str, Any] = {
        "api_key": ELEVENLABS_KEY,
        "voice_id": "voice-de",
        "base_url": fake.elevenlabs_base_url,
    }
    return ElevenLabsWebSocketTextToSpeech(**(options | kwargs))


def _sockets(fake: FakeEndpoints) -> list[dict[str, Any]]:
    return [r.body for r in fake.behaviour.requests_to("tts") if r.path.endswith("/stream-input")]


async def _all(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in stream])


def _client_socket_tasks() -> list[asyncio.Task[Any]]:
    """Tasks of the websockets client (keepalive, closing); the fake's server side runs on uvicorn's own."""
    left = []
    for task in asyncio.all_tasks():
        code = getattr(task.get_coro(), "cr_code", None)
        if not task.done() and code is not None and "/websockets/asyncio/" in code.co_filename:
            left.append(task)
    return left


async def test_a_sentence_is_spoken_over_the_socket_in_ulaw(
    fake: FakeEndpoints, elevenlabs_client: AsyncElevenLabs
) -> None:
    audio = await _all(_tts(fake).synthesize(SENTENCE))
    [socket] = _sockets(fake)
    assert socket["voice_id"] == "voice-de"
    assert socket["query"] == {
        "model_id": "eleven_flash_v2_5",
        "output_format": "ulaw_8000",
        "language_code": "de",
    }
    first, text, eos = socket["messages"]
    assert first["text"] == " "
    assert "chunk_length_schedule" in first["generation_config"]
    assert text == {"text": SENTENCE + " ", "flush": True}
    assert eos == {"text": ""}
    assert socket["completed"]
    http = ElevenLabsTextToSpeech(elevenlabs_client, voice_id="voice-de")
    assert audio == await _all(http.synthesize(SENTENCE))  # the same μ-law as the HTTP route


async def test_a_streamed_reply_speaks_its_first_clause_before_the_rest_is_written(
    fake: FakeEndpoints,
) -> None:
    reply = _tts(fake).reply()
    await reply.start()
    try:
        async with aclosing(reply.audio()) as audio:
            await reply.feed("Gerne,")
            first = await anext(audio)  # before the second clause exists: the first was rendered alone
            await reply.feed("nennen Sie mir bitte Ihre Kundennummer.")
            await reply.end()
            rest = b"".join([chunk async for chunk in audio])
    finally:
        await reply.aclose()
    [socket] = _sockets(fake)
    assert [m.get("text") for m in socket["messages"]] == [
        " ",
        "Gerne, ",
        "nennen Sie mir bitte Ihre Kundennummer. ",
        "",
    ]
    assert socket["completed"]
    one = await _all(_tts(fake).synthesize("Gerne,"))
    two = await _all(_tts(fake).synthesize("nennen Sie mir bitte Ihre Kundennummer."))
    assert first + rest == one + two


async def test_the_key_may_be_refused_at_the_upgrade(fake: FakeEndpoints) -> None:
    with pytest.raises(ProviderError) as info:
        await _all(_tts(fake, api_key="xi-wrong").synthesize(SENTENCE))
    assert (info.value.status, info.value.retryable) == (401, False)
    assert not _sockets(fake)  # refused before any socket was accepted, and not tried twice


@pytest.mark.parametrize(
    ("fault", "status", "retryable", "words"),
    [
        (Fault.RATE_LIMIT, 429, True, "too_many_concurrent_requests"),
        (Fault.SERVER_ERROR, 500, True, "internal_server_error"),
        (Fault.REFUSE, 403, False, "HTTP 403"),
        (Fault.MALFORMED, None, False, "malformed"),
        (Fault.TIMEOUT, None, True, "nothing within"),
    ],
)
async def test_a_fault_before_any_audio_is_a_provider_error_of_its_kind(
    fake: FakeEndpoints, fault: Fault, status: int | None, retryable: bool, words: str
) -> None:
    fake.behaviour.inject("tts", fault, count=-1)
    with pytest.raises(ProviderError) as info:
        await _all(_tts(fake, first_byte_timeout_s=0.4).synthesize(SENTENCE))
    err = info.value
    assert (err.stage, err.status, err.retryable) == ("tts", status, retryable)
    assert words in err.detail
    for socket in _sockets(fake):
        await asyncio.wait_for(socket["ended"].wait(), GUARD_S)  # every socket was closed, none left open
    assert not _client_socket_tasks()


async def test_a_busy_server_is_tried_once_more_within_the_budget(fake: FakeEndpoints) -> None:
    fake.behaviour.inject("tts", Fault.RATE_LIMIT, count=1)
    audio = await _all(_tts(fake).synthesize(SENTENCE))
    assert audio
    assert len(_sockets(fake)) == 2


async def test_a_socket_closed_mid_sentence_is_final_after_audio_was_heard(fake: FakeEndpoints) -> None:
    fake.behaviour.inject("tts", Fault.RESET, count=-1)
    got: list[bytes] = []

    async def listen() -> None:
        async for chunk in _tts(fake).synthesize(SENTENCE):
            got.append(chunk)

    with pytest.raises(ProviderError) as info:
        await listen()
    assert len(got) == 1  # the part that arrived was passed on, then the error
    assert info.value.retryable
    assert "closed mid-stream (code 1011)" in info.value.detail
    assert len(_sockets(fake)) == 1  # the caller may have heard the first part: no second attempt


async def test_cancel_mid_sentence_closes_the_socket(fake: FakeEndpoints) -> None:
    fake.behaviour.pace("tts", per_token_ms=50)
    stream = _tts(fake).synthesize("Ein langer Satz, der länger spricht als der Anrufer wartet.")
    async with aclosing(stream):  # type: ignore[type-var]
        assert await anext(stream)
    [socket] = _sockets(fake)
    await asyncio.wait_for(socket["ended"].wait(), GUARD_S)
    assert not socket.get("completed")
    assert not _client_socket_tasks()


async def test_cancel_mid_reply_closes_the_socket(fake: FakeEndpoints) -> None:
    fake.behaviour.pace("tts", per_token_ms=50)
    reply = _tts(fake).reply()

    heard = asyncio.Event()

    async def listen() -> None:
        async for _chunk in reply.audio():
            heard.set()

    await reply.feed("Gerne helfe ich Ihnen, einen Moment bitte.")
    listener = asyncio.create_task(listen())
    [socket] = _sockets(fake)
    await asyncio.wait_for(heard.wait(), GUARD_S)
    listener.cancel()  # barge-in: the turn's task is cancelled, then the reply closed
    with pytest.raises(asyncio.CancelledError):
        await listener
    await reply.aclose()
    await asyncio.wait_for(socket["ended"].wait(), GUARD_S)
    assert not socket.get("completed")
    assert not _client_socket_tasks()


async def test_a_stalled_reply_ends_within_the_first_audio_budget(fake: FakeEndpoints) -> None:
    fake.behaviour.inject("tts", Fault.TIMEOUT)
    reply = _tts(fake, first_byte_timeout_s=0.3).reply()
    try:
        await reply.feed("Gerne.")
        with pytest.raises(ProviderError) as info:
            await _all(reply.audio())
    finally:
        await reply.aclose()
    assert info.value.retryable
    assert "no audio within 0.3 s" in info.value.detail
