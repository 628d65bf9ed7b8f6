"""Every (state, trigger) pair of the table: the expected state, or a counted invalid trigger."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from dialogue.machine import TRANSITIONS, CallMachine, CallState, mermaid_diagram

S = CallState
TRIGGERS = sorted({t.trigger for t in TRANSITIONS})


class Owner:
    """Implements the table's effects by recording them; conditions read ``resume``."""

    def __init__(self, resume: CallState = S.SPEAKING) -> None:
        self.resume = resume
        self.effects: list[str] = []
        self.transitions: list[tuple[str, CallState, CallState]] = []

    def on_transition(self, trigger: str, source: CallState, dest: CallState) -> None:
        self.transitions.append((trigger, source, dest))

    def resumes_greeting(self) -> bool:
        return self.resume is S.GREETING

    def resumes_speaking(self) -> bool:
        return self.resume is S.SPEAKING

    def resumes_thinking(self) -> bool:
        return self.resume is S.THINKING

    def resumes_transcribing(self) -> bool:
        return self.resume is S.TRANSCRIBING

    def __getattr__(self, name: str) -> object:
        if name in {
            "arm_reprompt",
            "disarm_reprompt",
            "pause_output",
            "resume_output",
            "interrupt_turn",
            "start_turn",
            "end_call",
        }:
            return lambda: self.effects.append(name)
        raise AttributeError(name)


EXPECTED: dict[tuple[CallState, str], CallState | None] = {
    (S.GREETING, "greeting_done"): S.LISTENING,
    (S.GREETING, "speech_started"): S.BARGE_IN,
    (S.SPEAKING, "speech_started"): S.BARGE_IN,
    (S.THINKING, "speech_started"): S.BARGE_IN,
    (S.TRANSCRIBING, "speech_started"): S.BARGE_IN,
    (S.LISTENING, "speech_started"): S.LISTENING,
    (S.BARGE_IN, "barge_in_confirmed"): S.LISTENING,
    (S.BARGE_IN, "false_barge_in"): S.SPEAKING,
    (S.LISTENING, "speech_ended"): S.TRANSCRIBING,
    (S.TRANSCRIBING, "transcript_empty"): S.LISTENING,
    (S.TRANSCRIBING, "transcript_ready"): S.THINKING,
    (S.THINKING, "reply_started"): S.SPEAKING,
    (S.TRANSCRIBING, "reply_started"): S.SPEAKING,
    (S.LISTENING, "reply_started"): S.SPEAKING,
    (S.SPEAKING, "playback_done"): S.LISTENING,
    (S.THINKING, "reply_failed"): S.LISTENING,
    (S.TRANSCRIBING, "reply_failed"): S.LISTENING,
    (S.LISTENING, "reply_failed"): S.LISTENING,
    **{(s, "hangup"): S.HANGUP for s in CallState if s is not S.HANGUP},
}


@pytest.mark.parametrize("state", list(CallState))
@pytest.mark.parametrize("trigger", TRIGGERS)
async def test_every_state_trigger_pair(state: CallState, trigger: str) -> None:
    owner = Owner()
    machine = CallMachine(owner, initial=state)
    expected = EXPECTED.get((state, trigger))
    changed = await machine.fire(trigger)
    if expected is None:
        assert not changed
        assert machine.state is state
        assert machine.invalid_triggers == 1
        assert owner.transitions == []
    else:
        assert changed
        assert machine.state is expected
        assert machine.invalid_triggers == 0
        assert owner.transitions == [(trigger, state, expected)]
        assert machine.log[-1].trigger == trigger


@pytest.mark.parametrize(
    ("resume", "dest"),
    [
        (S.GREETING, S.GREETING),
        (S.SPEAKING, S.SPEAKING),
        (S.THINKING, S.THINKING),
        (S.TRANSCRIBING, S.TRANSCRIBING),
        (S.LISTENING, S.LISTENING),
    ],
)
async def test_false_barge_in_resumes_where_the_work_is(resume: CallState, dest: CallState) -> None:
    owner = Owner(resume)
    machine = CallMachine(owner, initial=S.BARGE_IN)
    assert await machine.fire("false_barge_in")
    assert machine.state is dest


async def test_effects_named_in_the_table_run() -> None:
    owner = Owner()
    machine = CallMachine(owner, initial=S.SPEAKING)
    await machine.fire("speech_started")
    await machine.fire("barge_in_confirmed")
    await machine.fire("speech_ended")
    await machine.fire("hangup")
    assert owner.effects == ["pause_output", "interrupt_turn", "start_turn", "end_call"]
    assert [r.dest for r in machine.log] == [S.BARGE_IN, S.LISTENING, S.TRANSCRIBING, S.HANGUP]
    assert all(a.monotonic <= b.monotonic for a, b in zip(machine.log, machine.log[1:], strict=False))


async def test_a_transition_runs_without_giving_up_the_event_loop() -> None:
    # With two hundred calls every pass of the loop takes milliseconds; a barge-in's transition must not
    # wait for any (transitions' default gathers each callback list as tasks: two passes per list).
    owner = Owner()
    machine = CallMachine(owner, initial=S.SPEAKING)
    passes = 0

    def tick() -> None:
        nonlocal passes
        passes += 1

    asyncio.get_running_loop().call_soon(tick)
    assert await machine.fire("speech_started")
    assert await machine.fire("barge_in_confirmed")
    assert passes == 0
    assert owner.effects == ["pause_output", "interrupt_turn"]


def test_readme_embeds_the_generated_diagram() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    assert f"```mermaid\n{mermaid_diagram()}\n```" in readme, "regenerate: python -m dialogue.machine"
