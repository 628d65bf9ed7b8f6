"""Whole calls: Twilio simulator → real bot → provider fakes through the real SDK clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from dialogue.events import CallEvent, StateChanged
from dialogue.machine import CallState
from dialogue.session import CallSession
from simulator.call import place_call
from simulator.record import Utterance
from simulator.twilio import TwilioSimulator
from tests.support.audio import german_speech_ulaw, silence_ulaw
from tests.support.bot import PUBLIC_URL, Bot, running_bot

pytestmark = pytest.mark.timeout(60)

QUESTION = german_speech_ulaw("Guten Tag, wann haben Sie heute geöffnet?")


async def test_two_turn_conversation(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot, place_call(bot.base_url, public_url=PUBLIC_URL) as call:
        await call.wait_for_audio()
        await call.play_out()
        session = bot.sessions[0]
        await call.wait_for(lambda: session.state is CallState.LISTENING)
        for n in (1, 2):
            utt = await call.send_utterance(QUESTION)
            await call.send_silence(800)
            await call.wait_for(lambda u=utt: u.first_audio_at is not None, timeout_s=10)  # type: ignore[misc]
            await call.play_out()
            await call.wait_for(lambda: session.state is CallState.LISTENING, timeout_s=10)
            assert len(bot.events.of("latency", session.call_sid)) == n
        transcripts = bot.events.of("transcript", session.call_sid)
        assert [t.role for t in transcripts] == ["bot", "caller", "bot", "caller", "bot"]
        assert transcripts[0].text.startswith("Guten Tag")  # the greeting is part of the transcript
        assert transcripts[2].text.startswith("Gerne helfe ich Ihnen")
        latency = bot.events.of("latency", session.call_sid)[0]
        assert latency.transcript_ms is not None
        assert latency.first_audio_ms is not None
        assert latency.transcript_ms <= latency.llm_first_token_ms <= latency.first_audio_ms
        chat = bot.behaviour.requests_to("chat")
        assert len(chat) == 2
    assert session.active_tasks() == 0
    assert session.state is CallState.HANGUP
    assert call.record.violations == []


INTERRUPTION = german_speech_ulaw(
    "Moment, entschuldigen Sie, ich habe eine ganz andere Frage zu meiner Rechnung."
)
LONG_REPLY = (
    "Gerne erkläre ich Ihnen unsere Tarife. Der Grundtarif kostet neunzehn Euro im Monat. "
    "Der Komforttarif kostet neunundzwanzig Euro im Monat und enthält eine persönliche Beratung. "
    "Außerdem gibt es einen Ökotarif mit Strom aus erneuerbaren Energien."
)


async def _listening(call: TwilioSimulator, session: CallSession) -> None:
    await call.wait_for(lambda: session.state is CallState.LISTENING, timeout_s=15)


async def _ask_until_speaking(call: TwilioSimulator, session: CallSession) -> Utterance:
    """The caller asks a question; returns once the bot is answering it."""
    utt = await call.send_utterance(QUESTION)
    await call.send_silence(700)
    await call.wait_for(lambda: session.state is CallState.SPEAKING, timeout_s=10)
    return utt


async def _play_until(call: TwilioSimulator, session: CallSession, state: CallState) -> None:
    """Plays the bot's audio out as it arrives (so its marks come back) until the call reaches ``state``."""
    while session.state is not state:
        await call.wait_for(lambda: session.state is state or bool(call.playout.pending_marks), timeout_s=10)
        await call.play_out()


async def _play_until_hangup(call: TwilioSimulator, session: CallSession) -> None:
    """Until the call is in HANGUP and its shutdown (which emits ``call_ended``) has run: the state
    changes first, the shutdown task finishes a few event-loop passes later."""
    await _play_until(call, session, CallState.HANGUP)
    await call.wait_for(lambda: session.active_tasks() == 0)


@asynccontextmanager
async def _answering_long_reply(
    tmp_path: Path,
) -> AsyncIterator[tuple[Bot, TwilioSimulator, CallSession, Utterance]]:
    """A real-time bot (200 ms playout lead, eSpeak audio) that is speaking a long reply to a question."""
    from fakes.behaviour import FakeReply

    async with (
        running_bot(tmp_path, speech=True, playout_lead_ms=200) as bot,
        place_call(bot.base_url, public_url=PUBLIC_URL) as call,
    ):
        await call.wait_for_audio()
        await call.play_out()
        session = bot.sessions[0]
        await _listening(call, session)
        bot.behaviour.replies.append(FakeReply(LONG_REPLY))
        utt = await _ask_until_speaking(call, session)
        yield bot, call, session, utt


async def test_barge_in_while_speaking_keeps_only_heard_words(tmp_path: Path) -> None:
    async with _answering_long_reply(tmp_path) as (bot, call, session, utt):
        await call.send_silence(1500, realtime=True)  # let about 1.5 s of the reply play
        barge = await call.send_utterance(INTERRUPTION, realtime=True)
        await call.wait_for(lambda: barge.clear_at is not None, timeout_s=10)
        await call.send_silence(700, realtime=True)
        await call.wait_for(
            lambda: session.state in (CallState.TRANSCRIBING, CallState.THINKING, CallState.SPEAKING),
            timeout_s=10,
        )
        assert utt.first_audio_at is not None
        cut = [t for t in bot.events.of("transcript", session.call_sid) if t.role == "bot" and t.interrupted]
        assert len(cut) == 1, bot.events.of("transcript")
        heard, rest = cut[0].text, cut[0].cut
        assert heard
        assert rest
        assert LONG_REPLY.startswith(heard.split()[0])
        assert "Ökotarif" in rest
        assert "Ökotarif" not in heard
        assistant = [m.content for m in session.conversation.turns if m.role == "assistant"]
        assert heard in assistant
        assert LONG_REPLY not in assistant
        assert any(e.name == "clear" for e in bot.events.of("protocol", session.call_sid))
    assert session.active_tasks() == 0


async def test_barge_in_during_greeting(tmp_path: Path) -> None:
    async with (
        running_bot(tmp_path, speech=True, playout_lead_ms=200) as bot,
        place_call(bot.base_url, public_url=PUBLIC_URL) as call,
    ):
        await call.wait_for_audio()
        session = bot.sessions[0]
        await call.send_silence(600, realtime=True)
        barge = await call.send_utterance(INTERRUPTION, realtime=True)
        await call.wait_for(lambda: barge.clear_at is not None, timeout_s=10)
        await call.send_silence(700, realtime=True)
        await call.wait_for(lambda: bool(bot.behaviour.requests_to("stt")), timeout_s=10)
        greeting = next(t for t in bot.events.of("transcript", session.call_sid) if t.role == "bot")
        assert greeting.interrupted
        assert greeting.cut
        assert "helfen" in greeting.cut  # the greeting's last words were never heard
        states = [e.dest for e in bot.events.of("state_changed", session.call_sid)]
        assert states[:3] == ["barge_in", "listening", "transcribing"]


async def test_backchannel_does_not_interrupt(tmp_path: Path) -> None:
    async with _answering_long_reply(tmp_path) as (bot, call, session, _utt):
        mhm = german_speech_ulaw("mhm")
        bot.behaviour.clips.register("mhm", mhm)  # the overlap's words decide: STT must hear "mhm"
        await call.send_silence(800, realtime=True)
        await call.send_utterance(mhm, realtime=True)
        await call.send_silence(600, realtime=True)  # the gap after the "mhm" is how the detector judges it

        def states() -> list[str]:
            return [e.dest for e in bot.events.of("state_changed", session.call_sid)]

        await call.wait_for(lambda: states()[-2:] == ["barge_in", "speaking"])  # paused, then carried on
        before = call.record.audio_bytes
        await call.wait_for(lambda: call.record.audio_bytes >= before + 3000)  # the same answer goes on
        assert call.record.clears == []
        assert session.state is CallState.SPEAKING
        assert not [t for t in bot.events.of("transcript", session.call_sid) if t.interrupted]


async def test_silence_reprompts_then_says_goodbye(tmp_path: Path) -> None:
    async with (
        running_bot(tmp_path, reprompt_after_s=0.3, max_reprompts=2) as bot,
        place_call(bot.base_url, public_url=PUBLIC_URL) as call,
    ):
        await call.wait_for(lambda: bool(bot.sessions))
        session = bot.sessions[0]
        await _play_until_hangup(call, session)  # the caller says nothing at all
        marks = [name for _at, name in call.record.marks]
        assert [m.split("-")[0] for m in marks] == ["greeting", "reprompt1", "reprompt2", "bye"]
        ended = bot.events.of("call_ended", session.call_sid)
        assert ended
        assert ended[0].reason == "caller_silent"
    assert session.active_tasks() == 0


async def test_end_call_tool_says_goodbye_and_hangs_up(tmp_path: Path) -> None:
    from fakes.behaviour import FakeReply, FakeToolCall

    async with running_bot(tmp_path) as bot, place_call(bot.base_url, public_url=PUBLIC_URL) as call:
        await call.wait_for_audio()
        await call.play_out()
        session = bot.sessions[0]
        await _listening(call, session)
        bot.behaviour.replies.append(FakeReply("Sehr gern.", (FakeToolCall("end_call", {}),)))
        await call.send_utterance(QUESTION)
        await call.send_silence(700)
        await _play_until_hangup(call, session)
        assert bot.events.of("call_ended", session.call_sid)[0].reason == "bot_ended"
        assert any(name.startswith("bye") for _at, name in call.record.marks)
    assert session.active_tasks() == 0


async def test_transfer_tool_hands_over_through_twilio_rest(tmp_path: Path) -> None:
    from fakes.behaviour import FakeReply, FakeToolCall
    from fakes.twilio_rest import TwilioRestFake

    async with (
        TwilioRestFake("AC" + "0" * 32, "rest-token") as rest,
        running_bot(
            tmp_path,
            transfer_number="+4930999999",
            twilio_account_sid="AC" + "0" * 32,
            twilio_auth_token="rest-token",
            twilio_api_base_url=rest.base_url,
        ) as bot,
        place_call(bot.base_url, public_url=PUBLIC_URL, auth_token="rest-token") as call,
    ):
        await call.wait_for_audio()
        await call.play_out()
        session = bot.sessions[0]
        await _listening(call, session)
        bot.behaviour.replies.append(FakeReply("", (FakeToolCall("transfer_to_human", {"reason": "x"}),)))
        await call.send_utterance(QUESTION)
        await call.send_silence(700)
        await _play_until_hangup(call, session)
        updates = rest.updates_for(session.call_sid)
        assert len(updates) == 1
        assert "<Dial>+4930999999</Dial>" in str(updates[0])
        assert bot.events.of("call_ended", session.call_sid)[0].reason == "transferred"


@pytest.mark.parametrize(
    "state",
    [CallState.GREETING, CallState.LISTENING, CallState.TRANSCRIBING, CallState.THINKING, CallState.SPEAKING],
)
async def test_caller_hangs_up_in_any_state_leaves_nothing_running(tmp_path: Path, state: CallState) -> None:
    async with running_bot(tmp_path) as bot:
        bot.behaviour.pace("stt", ttfb_ms=2000 if state is CallState.TRANSCRIBING else 0)
        bot.behaviour.pace("chat", ttfb_ms=2000 if state is CallState.THINKING else 0)
        async with place_call(bot.base_url, public_url=PUBLIC_URL) as call:
            await call.wait_for_audio()
            session = bot.sessions[0]
            if state is not CallState.GREETING:
                await call.play_out()
                await _listening(call, session)
            if state not in (CallState.GREETING, CallState.LISTENING):
                await call.send_utterance(QUESTION)
                await call.send_silence(700)
                await call.wait_for(lambda: session.state is state, timeout_s=10)
            assert session.state is state
            await call.hang_up()
            await call.wait_for(lambda: session.state is CallState.HANGUP, timeout_s=5)
            await call.wait_for(lambda: session.active_tasks() == 0, timeout_s=5)
            registry = bot.ctx.extras["twilio_edge"].registry  # type: ignore[attr-defined]
            await call.wait_for(lambda: registry.active == 0, timeout_s=5)
        ended = bot.events.of("call_ended", session.call_sid)
        assert len(ended) == 1
        assert ended[0].reason == "stop"


@pytest.mark.parametrize(("digit", "reason"), [("0", "transferred"), ("9", "dtmf")])
async def test_dtmf_actions(tmp_path: Path, digit: str, reason: str) -> None:
    from fakes.twilio_rest import TwilioRestFake

    sid = "AC" + "1" * 32
    async with (
        TwilioRestFake(sid, "rest-token") as rest,
        running_bot(
            tmp_path,
            transfer_number="+4930888888",
            dtmf_actions="0=transfer,9=hangup",
            twilio_account_sid=sid,
            twilio_auth_token="rest-token",
            twilio_api_base_url=rest.base_url,
        ) as bot,
        place_call(bot.base_url, public_url=PUBLIC_URL, auth_token="rest-token") as call,
    ):
        await call.wait_for_audio()
        session = bot.sessions[0]
        await call.send_dtmf(digit)  # during the greeting: the greeting is cut, the action runs
        await _play_until_hangup(call, session)
        assert bot.events.of("call_ended", session.call_sid)[0].reason == reason
        updates = str(rest.updates_for(session.call_sid))
        assert ("<Dial>+4930888888</Dial>" in updates) is (digit == "0")
        assert ("<Hangup" in updates) is (digit == "9")
        dtmf = [e for e in bot.events.of("protocol", session.call_sid) if e.name == "dtmf"]
        assert [e.detail for e in dtmf] == [digit]


async def test_transcription_is_hidden_in_the_end_of_turn_wait(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot, place_call(bot.base_url, public_url=PUBLIC_URL) as call:
        bot.behaviour.pace("stt", ttfb_ms=250)
        stt_requests_at_end_of_turn: list[int] = []

        class Probe:
            def publish(self, event: CallEvent) -> None:
                if isinstance(event, StateChanged) and event.dest == "transcribing":
                    stt_requests_at_end_of_turn.append(len(bot.behaviour.requests_to("stt")))

        bot.ctx.add_sink(Probe())
        await call.wait_for_audio()
        await call.play_out()
        session = bot.sessions[0]
        await _listening(call, session)
        utt = await call.send_utterance(QUESTION, realtime=True)
        await call.send_silence(700, realtime=True)
        await call.wait_for(lambda: utt.first_audio_at is not None, timeout_s=5)
        await call.wait_for(lambda: bool(bot.events.of("latency", session.call_sid)), timeout_s=5)
        # Speculative STT starts 100 ms into every pause (EAGER_EOT_MS): once at the comma after "Guten Tag"
        # (the caller went on, so that transcript was judged stale and not used) and once after the
        # question. Both requests reached the fake before the turn was declared over (an ordering of events
        # in one process, not a clock reading), and the turn used the second: no request after the end.
        assert stt_requests_at_end_of_turn == [2]
        stt = bot.behaviour.requests_to("stt")
        assert len(stt) == 2
        assert stt[1].body["file_bytes"] > stt[0].body["file_bytes"]  # the whole question, not the greeting


async def test_a_pause_inside_the_turn_does_not_cut_the_caller_off(tmp_path: Path) -> None:
    # The first part ends on a preposition: the judge holds the pause. (After a complete-sounding first
    # part, "Ich hätte gern einen Termin", a 350 ms pause now ends the turn, and the caller who goes on is
    # merged into one turn: tests/dialogue/test_end_of_turn.py.)
    first = german_speech_ulaw("Ich hätte gern einen Termin am")
    second = german_speech_ulaw("Dienstag um neun Uhr.")
    async with running_bot(tmp_path) as bot, place_call(bot.base_url, public_url=PUBLIC_URL) as call:
        bot.behaviour.clips.register("Ich hätte gern einen Termin am", first)
        bot.behaviour.clips.register("Dienstag um neun Uhr.", second)
        await call.wait_for_audio()
        await call.play_out()
        session = bot.sessions[0]
        await _listening(call, session)
        await call.send_audio(first + silence_ulaw(350) + second, realtime=True)
        await call.send_silence(800, realtime=True)
        await call.wait_for(lambda: bool(bot.events.of("latency", session.call_sid)), timeout_s=5)
        stt = bot.behaviour.requests_to("stt")
        assert len(stt) == 2  # one speculative request for the first half, one for the whole turn
        assert stt[1].body["file_bytes"] > stt[0].body["file_bytes"] + 2 * len(second) // 2
        assert len(bot.events.of("transcript", session.call_sid)) == 3  # greeting, caller, bot
        assert len(bot.behaviour.requests_to("chat")) == 1
