"""``/voice`` opens the pooled providers' connections while the phone rings; the call's turns reuse them.

Against the real APIs each new connection is a TCP and TLS handshake inside the caller's turn. The fakes
record the client port of every request, so "the same connection" is something a test can see.
"""

from __future__ import annotations

from pathlib import Path

from fakes.behaviour import RecordedRequest
from simulator.call import place_call
from tests.support.audio import german_speech_ulaw
from tests.support.bot import PUBLIC_URL, Bot, running_bot

WORDS = "Wann haben Sie am Samstag geöffnet?"


def _recorded(bot: Bot, *endpoints: str) -> list[RecordedRequest]:
    return [r for r in bot.behaviour.requests if r.endpoint in endpoints]


async def test_the_ringing_call_s_first_turn_finds_its_connections_open(tmp_path: Path) -> None:
    quiet = {"stt_mode": "batch", "stt_hedge_after_s": 0, "llm_hedge_after_s": 0}  # a hedge opens its own
    async with running_bot(tmp_path, **quiet):
        pass  # fills the phrase cache on disk: the next start sends no TTS request before the call
    async with running_bot(tmp_path, **quiet) as bot:
        assert not bot.behaviour.requests, "nothing was connected before the call"
        clip = german_speech_ulaw(WORDS)
        bot.behaviour.clips.register(WORDS, clip)
        async with place_call(bot.base_url, public_url=PUBLIC_URL) as call:
            await call.wait_for(lambda: len(_recorded(bot, "models", "tts_models")) == 2, timeout_s=10)
            await call.wait_for_audio()
            await call.play_out()
            session = bot.sessions[0]
            await call.send_utterance(clip)
            await call.send_silence(900)
            await call.wait_for(lambda: bool(bot.events.of("latency", session.call_sid)), timeout_s=10)
            await call.play_out()
        openai = _recorded(bot, "models", "stt", "chat")
        assert openai[0].endpoint == "models", "the warm-up went before any request of the turn"
        assert [r.endpoint for r in openai].count("models") == 1, "STT and LLM share one pool: one warm-up"
        first_stt = next(r for r in openai if r.endpoint == "stt")
        assert first_stt.client_port == openai[0].client_port, "STT used the connection opened while it rang"
        first_chat = next(i for i, r in enumerate(openai) if r.endpoint == "chat")
        assert openai[first_chat].client_port in {r.client_port for r in openai[:first_chat]}, (
            "the LLM request found a connection of this call open"
        )
        tts = _recorded(bot, "tts_models", "tts")
        assert tts[0].endpoint == "tts_models"
        assert tts[1].client_port == tts[0].client_port, "the first sentence used the warm connection"
