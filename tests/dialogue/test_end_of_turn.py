"""End of turn from the words and the silence, in whole calls: simulator → real bot → fakes via the SDKs.

The fake transcriber answers with the words of the registered clips it finds in each upload, so the
judge reads what the caller really said up to each pause. The simulator sends audio fast-forwarded; the
detector's clock is the audio, so a test that waits for the pause's verdict before sending more silence
decides exactly where in the pause the verdict lands, whatever the machine's load.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from dialogue.events import TurnDecision
from dialogue.machine import CallState
from dialogue.session import CallSession
from media.turns import TurnConfig
from simulator.call import place_call
from simulator.twilio import TwilioSimulator
from tests.support.audio import german_speech_ulaw
from tests.support.bot import PUBLIC_URL, Bot, running_bot

pytestmark = pytest.mark.timeout(60)

DEFAULTS = TurnConfig()
OFFERED_MS = DEFAULTS.eager_eot_ms + 60
"""Silence after the words that certainly offers the pause to the judge (eSpeak clips end within 20 ms of
their last voiced frame; the VAD's hangover is part of the detector's view)."""


def _decisions(bot: Bot, session: CallSession) -> list[TurnDecision]:
    return list(bot.events.of("turn_decision", session.call_sid))


async def _listening_call(bot: Bot, call: TwilioSimulator) -> CallSession:
    await call.wait_for_audio()
    await call.play_out()
    session = bot.sessions[0]
    await call.wait_for(lambda: session.state is CallState.LISTENING, timeout_s=15)
    return session


async def test_an_unfinished_sentence_is_heard_out_through_a_900_ms_pause(tmp_path: Path) -> None:
    fragment_text, rest_text = "Ich rufe an wegen", "der Abschlagszahlung."
    fragment, rest = german_speech_ulaw(fragment_text), german_speech_ulaw(rest_text)
    async with running_bot(tmp_path) as bot, place_call(bot.base_url, public_url=PUBLIC_URL) as call:
        bot.behaviour.clips.register(fragment_text, fragment)
        bot.behaviour.clips.register(rest_text, rest)
        session = await _listening_call(bot, call)
        await call.send_utterance(fragment)
        await call.send_silence(OFFERED_MS)
        await call.wait_for(lambda: bool(_decisions(bot, session)), timeout_s=10)
        [pause] = _decisions(bot, session)
        assert (pause.ended, pause.verdict, pause.hold_ms) == (
            False,
            "incomplete",
            DEFAULTS.end_of_turn_hold_ms,
        )
        assert "wegen" in pause.reason
        await call.send_silence(900 - OFFERED_MS)  # far beyond the 500 ms the silence alone would allow
        await call.send_utterance(rest)
        await call.send_silence(OFFERED_MS)
        await call.wait_for(lambda: len(_decisions(bot, session)) >= 2, timeout_s=10)  # the whole turn judged
        await call.send_silence(700)
        await call.wait_for(lambda: bool(bot.events.of("latency", session.call_sid)), timeout_s=10)

        whole = f"{fragment_text} {rest_text}"
        chat = bot.behaviour.requests_to("chat")
        assert len(chat) == 1  # no reply to the fragment was ever requested, so none was cancelled
        users = [m["content"] for m in chat[0].body["messages"] if m["role"] == "user"]
        assert users == [whole]
        callers = [t.text for t in bot.events.of("transcript", session.call_sid) if t.role == "caller"]
        assert callers == [whole]
        states = [e.dest for e in bot.events.of("state_changed", session.call_sid)]
        assert states.count("transcribing") == 1
        ended = [d for d in _decisions(bot, session) if d.ended]
        assert len(ended) == 1
        # A whole statement ends after its own silence (a question that follows is merged into the turn).
        assert (ended[0].verdict, ended[0].waited_ms) == ("statement", DEFAULTS.end_of_turn_statement_ms)
        # Two uploads, both speculative: the fragment at its pause, the whole turn at the last one, which
        # the turn reused (no request after the end of turn).
        stt = bot.behaviour.requests_to("stt")
        assert len(stt) == 2
        assert stt[1].body["file_bytes"] > stt[0].body["file_bytes"] + len(rest)
    assert session.active_tasks() == 0


async def test_a_complete_question_ends_the_turn_before_the_silence_fallback(tmp_path: Path) -> None:
    text = "Wann haben Sie geöffnet?"
    question = german_speech_ulaw(text)
    async with running_bot(tmp_path) as bot, place_call(bot.base_url, public_url=PUBLIC_URL) as call:
        bot.behaviour.clips.register(text, question)
        session = await _listening_call(bot, call)
        with capture_logs() as logs:
            utt = await call.send_utterance(question)
            await call.send_silence(OFFERED_MS)
            await call.wait_for(lambda: bool(_decisions(bot, session)), timeout_s=10)
            await call.send_silence(700)
            await call.wait_for(lambda: utt.first_audio_at is not None, timeout_s=10)
        [pause, ended] = _decisions(bot, session)
        assert (pause.ended, pause.verdict, pause.reason, pause.hold_ms) == (
            False,
            "complete",
            "question mark",
            DEFAULTS.end_of_turn_complete_ms,
        )
        assert ended.ended
        # Measured on the detector's stream clock: silence after the last voiced frame until the decision.
        assert ended.waited_ms == DEFAULTS.end_of_turn_complete_ms
        assert ended.waited_ms is not None
        assert ended.waited_ms < DEFAULTS.end_of_turn_silence_ms
        assert ended.reason == "complete: question mark"
        assert len(bot.behaviour.requests_to("stt")) == 1  # the pause's transcript was the turn's
        callers = [t.text for t in bot.events.of("transcript", session.call_sid) if t.role == "caller"]
        assert callers == [text]
        assert len(bot.behaviour.requests_to("chat")) == 1
        # Every decision is in the log too, with the call's SID bound.
        judged = [e for e in logs if e["event"] == "turn_pause_judged"]
        assert [(e["verdict"], e["reason"], e["hold_ms"], e["stale"]) for e in judged] == [
            ("complete", "question mark", 200, False)
        ]
        [ended_log] = [e for e in logs if e["event"] == "turn_ended"]
        assert (ended_log["reason"], ended_log["waited_ms"]) == ("complete: question mark", 200)
        assert {e["call_sid"] for e in [*judged, ended_log]} == {session.call_sid}
    assert session.active_tasks() == 0


async def test_without_a_verdict_the_silence_decides(tmp_path: Path) -> None:
    """A transcript that holds no words gives no verdict: the turn ends on the 500 ms silence fallback."""
    question = german_speech_ulaw("Wann haben Sie geöffnet?")
    async with running_bot(tmp_path) as bot, place_call(bot.base_url, public_url=PUBLIC_URL) as call:
        session = await _listening_call(bot, call)
        bot.behaviour.transcripts.extend(["...", "..."])  # noise to the transcriber, at the pause and after
        await call.send_utterance(question)
        await call.send_silence(OFFERED_MS)
        await call.wait_for(lambda: bool(bot.behaviour.requests_to("stt")), timeout_s=10)
        await call.send_silence(700)
        await call.wait_for(
            lambda: session.state is CallState.LISTENING and _ended(bot, session), timeout_s=10
        )
        [ended] = [d for d in _decisions(bot, session) if d.ended]
        assert (ended.verdict, ended.waited_ms) == ("silence", DEFAULTS.end_of_turn_silence_ms)
        assert not [d for d in _decisions(bot, session) if not d.ended]
        assert not bot.behaviour.requests_to("chat")  # noise is no turn: nothing was answered
    assert session.active_tasks() == 0


def _ended(bot: Bot, session: CallSession) -> bool:
    return any(d.ended for d in _decisions(bot, session))
