"""Never silent, as a property: an exception at any stage, a lost mark echo or a stalled send each leave
the caller something to hear, the call goes on, and a hang-up in any state leaves no task behind.

Every call here runs under the harness's strict check (no invalid trigger, no unexpected ``CallError``,
no task left). The 2 s guards are the issue's promise to the caller, awaited as events, not measured.
"""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from dialogue.machine import Floor, Trigger, Work
from media.errors import ProviderError
from tests.support.audio import german_speech_ulaw
from tests.support.harness import CATALOGUE, REPLY, Harness, call

QUESTION = german_speech_ulaw("Wann haben Sie geöffnet?")
HEARD_WITHIN_S = 2.0


def _bot_said(h: Harness) -> list[str]:
    return [t.text for t in h.of("transcript") if t.role == "bot"]


async def _listening(h: Harness) -> None:
    await h.until(lambda: h.session.state is Work.LISTENING and h.session.machine.floor is Floor.BOT)


async def _answered_normally(h: Harness) -> None:
    """The call goes on: the next question gets the real answer."""
    said = len(_bot_said(h))
    await h.say(QUESTION)
    await h.until(lambda: len(_bot_said(h)) > said and h.session.state is Work.LISTENING)
    assert _bot_said(h)[-1] == REPLY


@pytest.mark.parametrize(
    ("stage", "errors"),
    [("stt", {"session"}), ("llm", {"session"}), ("tts", {"tts"}), ("tool", set()), ("playout", {"playout"})],
)
async def test_an_exception_at_any_stage_is_spoken_around_and_the_call_goes_on(
    stage: str, errors: set[str]
) -> None:
    async with call() as h:
        h.expected_errors = errors
        await _listening(h)
        if stage == "tool":
            h.engines.tool_calls = ["lookup"]
        h.chaos.arm(stage)
        before = len(h.wire.audio)
        await h.say(QUESTION)
        await h.until(lambda: len(h.wire.audio) > before, guard_s=HEARD_WITHIN_S)
        await _listening(h)
        assert h.chaos.struck == [stage]
        assert {e.stage for e in h.of("error")} == errors
        if stage in ("stt", "llm"):
            assert _bot_said(h)[-1].endswith(CATALOGUE.llm_fallback)
        h.engines.tool_calls = []
        await _answered_normally(h)


async def test_a_lost_mark_echo_does_not_keep_the_bot_speaking() -> None:
    async with call(echo_slack_s=0.2) as h:
        await _listening(h)
        h.wire.lose_marks = 1
        with capture_logs() as logs:
            await h.say(QUESTION)
            await _listening(h)
        assert [e["event"] for e in logs].count("mark_echo_lost") == 1
        await _answered_normally(h)


async def test_a_stalled_send_neither_freezes_the_call_nor_loses_the_answer() -> None:
    async with call(echo_slack_s=0.2) as h:
        await _listening(h)
        stall = h.wire.stall = asyncio.Event()
        before = len(h.wire.audio)
        await h.say(QUESTION)
        await h.until(lambda: h.session.state is Work.SPEAKING)
        await _listening(h)  # the marks never came: the call moved on instead of "speaking" forever
        stall.set()
        h.wire.stall = None
        await h.until(lambda: len(h.wire.audio) > before, guard_s=HEARD_WITHIN_S)
        # The late answer plays now; the caller hears it out (on the stream clock) before asking again, as
        # over the bot's audio the question would be its echo or a barge-in, not a new turn.
        await h.until(lambda: not h.session.voice.playout.queued)
        await h.say(b"", silence_ms=(len(h.wire.audio) - before) // 8)
        await _answered_normally(h)


async def test_a_superseded_turn_never_speaks() -> None:
    async with call() as h:
        await _listening(h)
        gate = h.chaos.hold("llm")
        await h.say(QUESTION)
        await h.until(lambda: h.session.state is Work.THINKING)
        await h.session.on_dtmf("5")  # no action on 5: nothing changes
        h.session.take_over(lambda job: h.session.lines.say(job, CATALOGUE.anything_else, "x"), "x")
        gate.set()  # the superseded turn finishes: its progress must not count
        await h.until(lambda: CATALOGUE.anything_else in _bot_said(h))
        await _listening(h)
        assert REPLY not in _bot_said(h)


@pytest.mark.parametrize("where", ["greeting", "paused", "listening", "transcribing", "thinking", "speaking"])
async def test_hanging_up_in_any_state_leaves_no_task(where: str) -> None:
    async with call(echo_slack_s=5.0) as h:
        if where == "paused":
            for frame in _frames_until_onset(h):
                h.session.on_audio(frame)
            assert h.session.machine.floor is Floor.PAUSED
        elif where != "greeting":
            await _listening(h)
        if where in ("transcribing", "thinking"):
            h.chaos.hold("stt" if where == "transcribing" else "llm")
        if where == "speaking":
            h.wire.lose_marks = 10
        if where in ("transcribing", "thinking", "speaking"):
            await h.say(QUESTION)
            await h.until(lambda: h.session.state == where)
        assert h.session.machine.view in (where, "barge_in")
        await h.session.on_stop("stop")
        assert h.session.state is Work.HANGUP
        assert h.session.active_tasks() == 0


def _frames_until_onset(h: Harness) -> list[bytes]:
    from tests.support.audio import frames

    return list(frames(QUESTION[: 8 * 300]))


async def test_a_reply_announces_itself_once_however_many_sentences() -> None:
    async with call() as h:
        await _listening(h)
        await _answered_normally(h)
        await _answered_normally(h)
        started = [r for r in h.session.machine.log if r.trigger is Trigger.REPLY_STARTED]
        assert len(started) == 2  # two replies of two sentences each


async def test_what_was_spoken_before_a_mid_stream_model_failure_stays_in_the_history() -> None:
    async with call() as h:
        h.expected_errors = {"llm"}
        await _listening(h)
        h.chaos.arm("llm", exc=ProviderError("llm", "stream broke", retryable=True))
        said = len(_bot_said(h))
        await h.say(QUESTION)
        await h.until(lambda: len(_bot_said(h)) > said and h.session.state is Work.LISTENING)
        first_sentence = REPLY.split(". ")[0] + "."
        assert _bot_said(h)[-1] == first_sentence  # heard; no fallback on top of a reply already begun
        assistant = [m.content for m in h.session.conversation.turns if m.role == "assistant"]
        assert assistant == [first_sentence]


async def test_a_caller_who_goes_on_while_the_bot_thinks_gets_one_turn_and_an_answer() -> None:
    async with call() as h:
        await _listening(h)
        gate = h.chaos.hold("llm")
        await h.say(QUESTION)
        await h.until(lambda: h.session.state is Work.THINKING)
        said = len(_bot_said(h))
        await h.say(QUESTION)  # the caller goes on before the bot said anything
        gate.set()
        await h.until(lambda: len(_bot_said(h)) > said and h.session.state is Work.LISTENING)
        assert _bot_said(h)[-1] == REPLY
        users = [m for m in h.session.conversation.turns if m.role == "user"]
        assert len(users) == 1  # one turn however many pauses
        await _answered_normally(h)
