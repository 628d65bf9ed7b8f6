"""The call's transcription socket opens while the phone rings (``/voice``); the session takes it over."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from openai import AsyncOpenAI
from structlog.testing import capture_logs

from fakes.server import run_fake_providers
from media.streaming_stt import BufferedSTT
from media.stt_openai import OpenAISpeechToText
from media.stt_realtime import RealtimeSTT
from media.transport import CallControl, CallTransport, StreamHandler, StreamStart
from simulator.call import place_call
from tests.support.audio import german_speech_ulaw
from tests.support.bot import PUBLIC_URL, running_bot
from web.providers import build_providers
from web.settings import Settings
from web.stt_prewarm import SttPrewarm

WORDS = "Ich möchte meinen Zählerstand melden."


async def test_voice_opens_the_socket_and_the_media_session_takes_it(tmp_path: Path) -> None:
    async with running_bot(tmp_path, stt_mode="realtime") as bot:
        prewarm = SttPrewarm.of(bot.ctx)
        assert prewarm is not None
        ringing: list[int] = []
        tracking = bot.ctx.session_factory
        assert tracking is not None

        def counting(transport: CallTransport, control: CallControl, start: StreamStart) -> StreamHandler:
            ringing.append(len(prewarm))
            return tracking(transport, control, start)

        bot.ctx.session_factory = counting
        clip = german_speech_ulaw(WORDS)
        bot.behaviour.clips.register(WORDS, clip)
        async with place_call(bot.base_url, public_url=PUBLIC_URL) as call:
            await call.wait_for_audio()
            session = bot.sessions[0]
            assert session.stream is not None
            assert len(prewarm) == 0, "the session took the warm transcriber"
            await call.play_out()
            await call.send_utterance(clip)
            await call.send_silence(900)
            await call.wait_for(lambda: bool(bot.events.of("latency", session.call_sid)), timeout_s=10)
            callers = [t.text for t in bot.events.of("transcript", session.call_sid) if t.role == "caller"]
            assert callers == [WORDS]
        assert ringing == [1], "/voice opened the transcriber before the stream came"
        updates = [r for r in bot.behaviour.requests_to("realtime") if r.body["type"] == "session.update"]
        assert len(updates) == 1, "the ring-time socket was the one used"
        assert not bot.behaviour.requests_to("stt")


async def test_a_socket_nobody_takes_is_closed_after_its_ttl() -> None:
    async with run_fake_providers(speech=False) as fake:
        client = AsyncOpenAI(api_key="sk-test", base_url=fake.openai_base_url, max_retries=0)
        engine = RealtimeSTT(client, fallback=OpenAISpeechToText(client))
        prewarm = SttPrewarm(engine, ttl_s=0.0)
        loop = asyncio.get_running_loop()
        with capture_logs() as logs:
            prewarm.ring("CA1")
            after_expiry = loop.create_future()
            loop.call_at(loop.time() + 0.001, after_expiry.set_result, None)  # ordered after the TTL timer
            await after_expiry
            assert len(prewarm) == 0
            await prewarm.aclose()
        assert [e["call_sid"] for e in logs if e["event"] == "stt_prewarm_expired"] == ["CA1"]
        left = [t for t in asyncio.all_tasks() if t.get_name().startswith(("stt_realtime", "stt_prewarm"))]
        assert not left
        fresh = prewarm.take("CA2")  # nothing rang: a new, unstarted transcriber
        await fresh.close()
        await client.close()


@pytest.mark.parametrize(
    ("mode", "base_url", "expected"),
    [
        ("auto", "", RealtimeSTT),
        ("auto", "https://api.openai.com/v1", RealtimeSTT),
        ("auto", "http://127.0.0.1:8080/v1", BufferedSTT),
        ("realtime", "http://127.0.0.1:8080/v1", RealtimeSTT),
        ("batch", "", BufferedSTT),
    ],
)
async def test_stt_mode_picks_the_streaming_engine(
    tmp_path: Path, mode: str, base_url: str, expected: type
) -> None:
    settings = Settings(
        openai_api_key="sk-test",  # type: ignore[arg-type]
        openai_base_url=base_url,
        stt_provider="openai",
        stt_mode=mode,  # type: ignore[arg-type]
        data_dir=tmp_path,
    )
    providers = build_providers(settings)
    assert isinstance(providers.streaming_stt, expected)
    await providers.aclose()
