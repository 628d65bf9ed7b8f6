"""Speech over the bot's voice, in whole calls: simulator → real bot (eSpeak voice) → fakes via the SDKs.

Backchannels leave the answer whole (ducked, never paused or cleared); "Stopp" and "Moment, …" interrupt
from their words, long before ``BARGE_IN_MS`` of speech; a caller who goes on over the reply's first words
gets one answer to everything they said. The fake transcriber answers with the words of the registered
clips it finds in each upload, so the overlap judge reads what the caller really said. The caller's audio
runs in real time (the bot's voice does), and every wait is for an event, never for a time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from dialogue.events import TurnDecision
from dialogue.machine import CallState
from dialogue.session import CallSession
from simulator.call import place_call
from simulator.twilio import TwilioSimulator
from tests.support.audio import german_speech_ulaw
from tests.support.bot import PUBLIC_URL, Bot, running_bot

pytestmark = pytest.mark.timeout(90)

QUESTION_TEXT = "Welche Tarife haben Sie?"
QUESTION = german_speech_ulaw(QUESTION_TEXT)
LONG_REPLY = (
    "Gerne erkläre ich Ihnen unsere Tarife. Der Grundtarif kostet neunzehn Euro im Monat. "
    "Der Komforttarif kostet neunundzwanzig Euro im Monat und enthält eine persönliche Beratung. "
    "Außerdem gibt es einen Ökotarif mit Strom aus erneuerbaren Energien."
)


def _overlaps(bot: Bot, session: CallSession) -> list[TurnDecision]:
    return [
        d
        for d in bot.events.of("turn_decision", session.call_sid)
        if d.verdict in ("backchannel", "interruption")
    ]


@asynccontextmanager
async def _answering(tmp_path: Path, *clips: tuple[str, bytes]) -> AsyncIterator[tuple[Bot, TwilioSimulator]]:
    """A real-time bot (200 ms lead, eSpeak voice) that has begun a long answer to ``QUESTION``."""
    from fakes.behaviour import FakeReply

    async with (
        running_bot(tmp_path, speech=True, playout_lead_ms=200) as bot,
        place_call(bot.base_url, public_url=PUBLIC_URL) as call,
    ):
        for text, audio in ((QUESTION_TEXT, QUESTION), *clips):
            bot.behaviour.clips.register(text, audio)
        await call.wait_for_audio()
        await call.play_out()
        session = bot.sessions[0]
        await call.wait_for(lambda: session.state is CallState.LISTENING, timeout_s=15)
        bot.behaviour.replies.append(FakeReply(LONG_REPLY))
        await call.send_utterance(QUESTION)
        await call.send_silence(700)
        await call.wait_for(lambda: session.state is CallState.SPEAKING, timeout_s=10)
        await call.send_silence(1200, realtime=True)  # past CONTINUE_WITHIN_MS: a reaction
        yield bot, call


@pytest.mark.parametrize("text", ["ja", "mhm", "genau"])
async def test_a_backchannel_leaves_the_answer_whole(tmp_path: Path, text: str) -> None:
    clip = german_speech_ulaw(text)
    async with _answering(tmp_path, (text, clip)) as (bot, call):
        session = bot.sessions[0]
        await call.send_utterance(clip, realtime=True)
        await call.send_silence(500, realtime=True)
        await call.wait_for(lambda: bool(_overlaps(bot, session)), timeout_s=10)
        while session.state is not CallState.LISTENING:  # the rest of the answer plays out, marks come back
            await call.wait_for(
                lambda: session.state is CallState.LISTENING or bool(call.playout.pending_marks), timeout_s=20
            )
            await call.play_out()
        [verdict] = _overlaps(bot, session)
        assert verdict.verdict == "backchannel"
        assert call.record.clears == []
        answer = [t for t in bot.events.of("transcript", session.call_sid) if t.role == "bot"][-1]
        assert (answer.text, answer.interrupted) == (LONG_REPLY, False)
        # Every byte the bot sent reached the caller (nothing was flushed), and the feed never paused.
        assert len(call.heard_audio()) == session.voice.playout.bytes_sent
        states = [e.dest for e in bot.events.of("state_changed", session.call_sid)]
        assert states[-3:] == ["barge_in", "speaking", "listening"]  # ducked while judged, then on
        assert len(bot.behaviour.requests_to("chat")) == 1  # and no second answer


@pytest.mark.parametrize(
    "text", ["Stopp.", "Moment, ich habe eine Frage zu meiner Rechnung."], ids=["stopp", "moment"]
)
async def test_stopp_and_moment_interrupt_from_their_words(tmp_path: Path, text: str) -> None:
    clip = german_speech_ulaw(text)
    async with _answering(tmp_path, (text, clip)) as (bot, call):
        session = bot.sessions[0]
        with capture_logs() as logs:
            barge = await call.send_utterance(clip, realtime=True)
            await call.send_silence(400, realtime=True)
            await call.wait_for(lambda: barge.clear_at is not None, timeout_s=10)
        [barge_in] = [e for e in logs if e["event"] == "barge_in"]
        assert barge_in["reason"] != "duration"  # the words decided, before BARGE_IN_MS of speech
        assert barge_in["at_ms"] - barge_in["onset_ms"] < session.detector.config.barge_in_ms
        [verdict] = _overlaps(bot, session)
        assert verdict.verdict == "interruption"
        assert len(call.record.clears) == 1
        cut = [t for t in bot.events.of("transcript", session.call_sid) if t.interrupted]
        assert len(cut) == 1
        assert "Ökotarif" in cut[0].cut  # the rest of the answer was never heard
        assistant = [m.content for m in session.conversation.turns if m.role == "assistant"]
        assert assistant[0] == cut[0].text  # the history holds what the caller heard of the answer
        assert barge_in["reply_heard_ms"] > session.detector.config.continue_within_ms


async def test_a_caller_who_goes_on_over_the_reply_gets_one_answer(tmp_path: Path) -> None:
    from fakes.behaviour import FakeReply

    first_text, rest_text = "Ich möchte einen Umzug melden.", "Was muss ich dafür tun?"
    first, rest = german_speech_ulaw(first_text), german_speech_ulaw(rest_text)
    async with (
        running_bot(tmp_path, speech=True, playout_lead_ms=200) as bot,
        place_call(bot.base_url, public_url=PUBLIC_URL) as call,
    ):
        bot.behaviour.clips.register(first_text, first)
        bot.behaviour.clips.register(rest_text, rest)
        await call.wait_for_audio()
        session = bot.sessions[0]
        # The greeting plays in real time over a live line, as on a phone: the echo gate learns meanwhile
        # that this line returns no echo, so speech over the reply's first syllables is heard at once.
        # (Fast-forwarded, the gate would still assume the worst echo and hide those syllables.)
        while session.state is not CallState.LISTENING:
            await call.send_silence(100, realtime=True)
        bot.behaviour.replies.append(FakeReply(LONG_REPLY))
        await call.send_utterance(first)
        await call.send_silence(600)  # a statement's silence: the bot takes the turn and answers it
        while session.state is not CallState.SPEAKING:  # the line carries the caller's silence meanwhile
            await call.send_silence(20, realtime=True)
        await call.send_silence(200, realtime=True)  # the caller goes on over the reply's first words
        bot.behaviour.replies.append(FakeReply("Für einen Umzug brauchen wir Ihr Auszugsdatum."))
        with capture_logs() as logs:
            await call.send_utterance(rest, realtime=True)  # over the reply's first words
            await call.send_silence(800, realtime=True)
            await call.wait_for(lambda: len(bot.behaviour.requests_to("chat")) == 2, timeout_s=10)
        [barge_in] = [e for e in logs if e["event"] == "barge_in"]
        assert barge_in["reply_heard_ms"] <= session.detector.config.continue_within_ms, [
            (e["event"], e.get("at_ms"), e.get("reason"), e.get("after_speech_ms")) for e in logs
        ]
        assert any(e["event"] == "turn_continued" for e in logs)
        assert len(call.record.clears) == 1
        whole = f"{first_text} {rest_text}"
        second = bot.behaviour.requests_to("chat")[1]
        users = [m["content"] for m in second.body["messages"] if m["role"] == "user"]
        assistants = [m["content"] for m in second.body["messages"] if m["role"] == "assistant"]
        assert users == [whole]  # one user message, however the caller paused
        assert LONG_REPLY not in assistants  # the reply to the fragment is not in the history
        await call.wait_for(lambda: session.state is CallState.SPEAKING, timeout_s=10)
        users_now = [m.content for m in session.conversation.turns if m.role == "user"]
        assert users_now == [whole]
