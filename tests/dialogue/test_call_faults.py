"""Every injected provider fault, on every stage, in a live call: the caller hears something, the call goes
on, and the failure is logged once with the call's id. How soon is the adapters' budgets' business (0.6 s
here); ``tests/dialogue/test_never_silent.py`` covers exceptions that are not provider errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from dialogue.machine import CallState
from fakes.behaviour import HTTP_FAULTS, Fault
from simulator.call import place_call
from tests.support.audio import german_speech_ulaw
from tests.support.bot import PUBLIC_URL, running_bot

QUESTION = german_speech_ulaw("Wann haben Sie geöffnet?")
BUDGETS = {"stt_timeout_s": 0.6, "llm_first_token_timeout_s": 0.6, "tts_first_byte_timeout_s": 0.6}
FALLBACK = {
    "stt": "Entschuldigung, ich habe Sie gerade nicht verstanden.",
    "chat": "Einen Moment bitte, da hat etwas nicht geklappt.",
}


@pytest.mark.parametrize("fault", HTTP_FAULTS)
@pytest.mark.parametrize("stage", ["stt", "chat", "tts"])
async def test_fault_is_spoken_around_and_the_call_goes_on(tmp_path: Path, stage: str, fault: Fault) -> None:
    async with (
        running_bot(tmp_path, **BUDGETS) as bot,
        place_call(bot.base_url, public_url=PUBLIC_URL) as call,
    ):
        await call.wait_for_audio()
        await call.play_out()
        session = bot.sessions[0]
        await call.wait_for(lambda: session.state is CallState.LISTENING, timeout_s=10)
        bot.expected_errors = {"llm" if stage == "chat" else stage}
        bot.behaviour.inject(stage, fault, count=-1)  # type: ignore[arg-type]
        with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
            utt = await call.send_utterance(QUESTION)
            await call.send_silence(700)
            await call.wait_for(lambda: utt.first_audio_at is not None, timeout_s=5)
            while session.state is not CallState.LISTENING:  # play the answer out as it arrives
                await call.wait_for(
                    lambda: session.state is CallState.LISTENING or bool(call.playout.pending_marks)
                )
                await call.play_out()
        bot_said = [t.text for t in bot.events.of("transcript", session.call_sid) if t.role == "bot"][-1]
        if stage in FALLBACK:
            assert bot_said.startswith(FALLBACK[stage])
            failures = [e for e in logs if e["event"] == "provider_failed"]
            assert len(failures) == 1
            assert failures[0]["call_sid"] == session.call_sid
            assert failures[0]["stage"] == ("llm" if stage == "chat" else "stt")
        else:
            # ElevenLabs down: the reply itself is spoken in the local backup voice.
            assert bot_said.startswith("Gerne helfe ich Ihnen dabei.")
            tts_failures = [e for e in logs if e["event"] == "tts_failed"]
            assert len(tts_failures) == 1
            assert tts_failures[0]["call_sid"] == session.call_sid
        assert session.state is CallState.LISTENING
    assert session.active_tasks() == 0
