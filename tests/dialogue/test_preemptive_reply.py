"""Replies started before the turn is certain, in whole calls: simulator → real bot → fakes via the SDKs.

A pause judged complete starts the LLM and the TTS of the first clause while the detector still counts
the silence. The simulator's audio is the detector's clock: a test waits for the held reply's TTS request
at the fake before it sends more audio, so the reply is certainly running, and certainly held, when the
caller goes on or stays silent.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from dialogue.events import TurnDecision
from dialogue.machine import BUSY, FLOOR_ROWS, CallState, Floor, Trigger, Work
from dialogue.session import CallSession
from dialogue.table import outcome, work_idle
from fakes.behaviour import FakeReply
from media.turns import TurnConfig
from simulator.call import place_call
from simulator.twilio import TwilioSimulator
from tests.support.audio import german_speech_ulaw
from tests.support.bot import PUBLIC_URL, Bot, running_bot

pytestmark = pytest.mark.timeout(60)

DEFAULTS = TurnConfig()
OFFERED_MS = DEFAULTS.eager_eot_ms + 60
STATEMENT = "Ich möchte einen Umzug melden."
QUESTION = "Was muss ich dafür tun?"
HELD = "Erste Antwort, die niemand hören darf."
SPOKEN = "Einen Umzug melden Sie am besten zwei Wochen vorher."


def _decisions(bot: Bot, session: CallSession) -> list[TurnDecision]:
    return list(bot.events.of("turn_decision", session.call_sid))


def _tts_texts(bot: Bot) -> list[str]:
    return [str(r.body["text"]) for r in bot.behaviour.requests_to("tts")]


def _bot_lines(bot: Bot, session: CallSession) -> list[str]:
    sentences = [e.text for e in bot.events.of("bot_sentence", session.call_sid)]
    transcripts = [t.text for t in bot.events.of("transcript", session.call_sid) if t.role == "bot"]
    return [*sentences, *transcripts]


async def _listening_call(bot: Bot, call: TwilioSimulator) -> CallSession:
    await call.wait_for_audio()
    await call.play_out()
    session = bot.sessions[0]
    await call.wait_for(lambda: session.state is CallState.LISTENING, timeout_s=15)
    return session


async def _judged_and_held(bot: Bot, call: TwilioSimulator, session: CallSession, decisions: int) -> None:
    """The pause is judged complete and the held reply's first clause has reached the TTS fake."""
    await call.send_silence(OFFERED_MS)
    await call.wait_for(lambda: len(_decisions(bot, session)) >= decisions, timeout_s=10)
    await call.wait_for(lambda: session.preemption.current is not None, timeout_s=10)
    reply = session.preemption.current
    await call.wait_for(lambda: reply is not None and reply.held is not None, timeout_s=10)
    held = reply.held if reply is not None else None
    await call.wait_for(lambda: held is not None and held.first_byte_at is not None, timeout_s=10)


@pytest.mark.parametrize("stt_mode", ["batch", "realtime"])
async def test_a_held_reply_the_caller_talks_over_is_never_heard_nor_kept(
    tmp_path: Path, stt_mode: str
) -> None:
    statement, question = german_speech_ulaw(STATEMENT), german_speech_ulaw(QUESTION)
    async with (
        running_bot(tmp_path, stt_mode=stt_mode) as bot,
        place_call(bot.base_url, public_url=PUBLIC_URL) as call,
    ):
        bot.behaviour.clips.register(STATEMENT, statement)
        bot.behaviour.clips.register(QUESTION, question)
        bot.behaviour.replies.extend([FakeReply(HELD), FakeReply(SPOKEN)])
        session = await _listening_call(bot, call)
        heard_before = len(call.heard_audio())
        await call.send_utterance(statement)
        await _judged_and_held(bot, call, session, decisions=1)
        assert _decisions(bot, session)[0].verdict == "statement"
        assert "Erste Antwort," in _tts_texts(bot)  # synthesised ahead ...
        assert session.state is CallState.LISTENING  # ... but the turn is not over: nothing was sent
        assert len(call.heard_audio()) == heard_before

        await call.send_utterance(question)  # the caller goes on within the statement's 500 ms
        await call.wait_for(lambda: session.preemption.dropped == 1)  # cancelled at the first voiced frame
        await call.send_silence(OFFERED_MS)
        await call.wait_for(lambda: len(_decisions(bot, session)) >= 2, timeout_s=10)
        await call.send_silence(700)
        await call.wait_for(lambda: bool(bot.events.of("latency", session.call_sid)), timeout_s=10)
        await call.play_out()
        await call.wait_for(lambda: session.state is CallState.LISTENING, timeout_s=10)

        whole = f"{STATEMENT} {QUESTION}"
        chat = bot.behaviour.requests_to("chat")
        assert [[m["content"] for m in r.body["messages"] if m["role"] == "user"] for r in chat] == [
            [STATEMENT],  # the cancelled request: the only cost of the held reply
            [whole],
        ]
        assert not any("Erste" in line for line in _bot_lines(bot, session))
        history = [(m.role, m.content) for m in session.conversation.turns]
        assert history == [("user", whole), ("assistant", SPOKEN)]
        callers = [t.text for t in bot.events.of("transcript", session.call_sid) if t.role == "caller"]
        assert callers == [whole]
        assert (session.preemption.started, session.preemption.used, session.preemption.dropped) == (2, 1, 1)
    assert session.active_tasks() == 0


@pytest.mark.parametrize("stt_mode", ["batch", "realtime"])
async def test_a_confirmed_held_reply_is_spoken_with_one_llm_request(tmp_path: Path, stt_mode: str) -> None:
    statement = german_speech_ulaw(STATEMENT)
    async with (
        running_bot(tmp_path, stt_mode=stt_mode) as bot,
        place_call(bot.base_url, public_url=PUBLIC_URL) as call,
    ):
        bot.behaviour.clips.register(STATEMENT, statement)
        bot.behaviour.replies.append(FakeReply(SPOKEN))
        session = await _listening_call(bot, call)
        with capture_logs() as logs:
            utt = await call.send_utterance(statement)
            await _judged_and_held(bot, call, session, decisions=1)
            await call.send_silence(700)
            await call.wait_for(lambda: utt.first_audio_at is not None, timeout_s=10)
            await call.wait_for(lambda: bool(bot.events.of("latency", session.call_sid)), timeout_s=10)
        assert len(bot.behaviour.requests_to("chat")) == 1
        first_clause = "Einen Umzug melden"
        assert _tts_texts(bot).count(first_clause) == 1  # the held audio was played, not synthesised again
        [latency] = bot.events.of("latency", session.call_sid)
        assert latency.preemptive_saved_ms is not None
        assert latency.preemptive_saved_ms > 0
        [adopted] = [e for e in logs if e["event"] == "reply_preemptive"]
        assert adopted["call_sid"] == session.call_sid
        await call.play_out()
        await call.wait_for(lambda: session.state is CallState.LISTENING, timeout_s=10)
        assert [(m.role, m.content) for m in session.conversation.turns] == [
            ("user", STATEMENT),
            ("assistant", SPOKEN),
        ]
    assert session.active_tasks() == 0


async def test_the_first_clause_reaches_tts_before_the_sentence_ends(tmp_path: Path) -> None:
    question = german_speech_ulaw(QUESTION)
    reply = "Am 24.11. um 14:30 Uhr können Sie z. B. bei Dr. Müller für 1.000 Euro vorbeikommen."
    async with running_bot(tmp_path, preemptive_reply=False) as bot:
        async with place_call(bot.base_url, public_url=PUBLIC_URL) as call:
            bot.behaviour.clips.register(QUESTION, question)
            bot.behaviour.replies.append(FakeReply(reply))
            session = await _listening_call(bot, call)
            await call.send_utterance(question)
            await call.send_silence(OFFERED_MS)
            await call.wait_for(lambda: bool(_decisions(bot, session)), timeout_s=10)
            await call.send_silence(700)
            await call.wait_for(lambda: session.state is CallState.SPEAKING, timeout_s=10)
            await call.play_out()
            await call.wait_for(lambda: session.state is CallState.LISTENING, timeout_s=10)
        texts = _tts_texts(bot)[-2:]
        # Three words in, at a word where the melody survives: never inside the date, time or abbreviation.
        assert texts == [
            "Am 24.11. um 14:30 Uhr",
            "können Sie z. B. bei Dr. Müller für 1.000 Euro vorbeikommen.",
        ]
        assert session.preemption.started == 0


def test_a_likely_end_is_taken_wherever_the_judge_can_report_one() -> None:
    """The judge reports on the caller's pause whatever the bot does; only a listening bot starts a reply."""
    for work in (Work.LISTENING, *BUSY):
        for floor in (Floor.CALLER, Floor.PAUSED):
            assert outcome(work, floor, Trigger.TURN_LIKELY_OVER) == (work, floor)
    starts = [r for r in FLOOR_ROWS if r.trigger is Trigger.TURN_LIKELY_OVER and "preempt" in r.effects]
    assert [(r.source, r.guard) for r in starts] == [((Floor.CALLER,), work_idle)]
