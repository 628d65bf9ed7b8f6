"""The spine: every (work, floor, trigger) combination against the tables, generations, data and effects."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from dialogue.machine import (
    FLOOR_ROWS,
    WORK_ROWS,
    CallMachine,
    Floor,
    Trigger,
    Work,
    mermaid_diagram,
    outcome,
    view_edges,
)

W, F, T = Work, Floor, Trigger
EFFECTS = {e for row in (*WORK_ROWS, *FLOOR_ROWS) for e in row.effects}


class Owner:
    """Records every effect with the data it was given, every transition and every view change."""

    def __init__(self) -> None:
        self.effects: list[tuple[str, dict[str, Any]]] = []
        self.transitions: list[tuple[str, Trigger, str, str]] = []
        self.views: list[tuple[str, str, str]] = []
        self.machine: CallMachine | None = None
        self.on_effect: dict[str, Any] = {}

    def on_transition(self, machine: str, trigger: Trigger, source: str, dest: str) -> None:
        self.transitions.append((machine, trigger, source, dest))

    def on_view(self, trigger: Trigger, source: str, dest: str) -> None:
        self.views.append((str(trigger), source, dest))

    def __getattr__(self, name: str) -> Any:
        if name in EFFECTS:

            def effect(data: Mapping[str, Any]) -> None:
                self.effects.append((name, dict(data)))
                if name in self.on_effect:
                    self.on_effect[name]()

            return effect
        raise AttributeError(name)

    @property
    def names(self) -> list[str]:
        return [name for name, _data in self.effects]


def _machine(work: Work = W.LISTENING, floor: Floor = F.BOT) -> tuple[CallMachine, Owner]:
    owner = Owner()
    machine = CallMachine(owner, work=work, floor=floor)
    machine.next_generation()
    owner.machine = machine
    return machine, owner


COMBINATIONS = [
    (w, f, t) for w, f, t in itertools.product(Work, Floor, Trigger) if not (w is W.HANGUP and f is not F.BOT)
]


@pytest.mark.parametrize(("work", "floor", "trigger"), COMBINATIONS)
def test_the_running_machine_does_what_the_table_says(work: Work, floor: Floor, trigger: Trigger) -> None:
    machine, owner = _machine(work, floor)
    expected = outcome(work, floor, trigger)
    taken = machine.fire(trigger, gen=machine.generation, utterance=None, speech_end=0.0)
    if expected is None:
        assert not taken
        assert (machine.work, machine.floor) == (work, floor)
        assert machine.invalid_triggers == 1
        assert owner.transitions == []
    else:
        assert taken
        assert (machine.work, machine.floor) == expected
        assert machine.invalid_triggers == 0


EXPECTED = {
    (W.SPEAKING, F.BOT, T.SPEECH_STARTED): (W.SPEAKING, F.PAUSED),
    (W.LISTENING, F.BOT, T.SPEECH_STARTED): (W.LISTENING, F.CALLER),
    (W.SPEAKING, F.PAUSED, T.SPEECH_CONFIRMED): (W.LISTENING, F.CALLER),
    (W.SPEAKING, F.PAUSED, T.SPEECH_DISCARDED): (W.SPEAKING, F.BOT),
    (W.THINKING, F.PAUSED, T.SPEECH_ENDED): (W.TRANSCRIBING, F.BOT),
    (W.SPEAKING, F.PAUSED, T.SPEECH_ENDED): (W.SPEAKING, F.BOT),
    (W.LISTENING, F.CALLER, T.SPEECH_ENDED): (W.TRANSCRIBING, F.BOT),
    (W.TRANSCRIBING, F.BOT, T.TRANSCRIPT_READY): (W.THINKING, F.BOT),
    (W.THINKING, F.BOT, T.REPLY_STARTED): (W.SPEAKING, F.BOT),
    (W.THINKING, F.PAUSED, T.REPLY_FAILED): (W.LISTENING, F.PAUSED),
    (W.SPEAKING, F.BOT, T.PLAYBACK_DONE): (W.LISTENING, F.BOT),
    (W.GREETING, F.BOT, T.PLAYBACK_DONE): (W.LISTENING, F.BOT),
    (W.GREETING, F.BOT, T.TAKE_OVER): (W.LISTENING, F.BOT),
    (W.SPEAKING, F.CALLER, T.HANGUP): (W.HANGUP, F.CALLER),
}


@pytest.mark.parametrize(("start", "end"), list(EXPECTED.items()))
def test_key_paths_of_a_call(start: tuple[Work, Floor, Trigger], end: tuple[Work, Floor]) -> None:
    assert outcome(*start) == end


@pytest.mark.parametrize("trigger", [T.SPEECH_STARTED, T.PLAYBACK_DONE, T.SPEECH_ENDED, T.HANGUP])
def test_nothing_moves_a_call_that_hung_up(trigger: Trigger) -> None:
    assert outcome(W.HANGUP, F.BOT, trigger) is None


def test_progress_of_superseded_work_is_dropped_and_counted_not_invalid() -> None:
    machine, owner = _machine(W.LISTENING)
    old = machine.generation
    machine.next_generation()
    assert not machine.fire(T.REPLY_STARTED, gen=old)  # a stale "first audio" of an older job
    assert not machine.fire(T.PLAYBACK_DONE)  # progress without a generation is never current
    assert machine.work is W.LISTENING
    assert machine.stale_triggers == 2
    assert machine.invalid_triggers == 0
    assert owner.transitions == []


def test_a_backchannel_returns_the_floor_and_the_work_went_on_meanwhile() -> None:
    machine, owner = _machine(W.SPEAKING)
    gen = machine.generation
    assert machine.fire(T.SPEECH_STARTED)
    assert (machine.work, machine.floor) == (W.SPEAKING, F.PAUSED)
    assert machine.fire(T.PLAYBACK_DONE, gen=gen)  # the last mark came back while the caller said "mhm"
    assert (machine.work, machine.floor) == (W.LISTENING, F.PAUSED)
    assert machine.fire(T.SPEECH_DISCARDED)
    assert (machine.work, machine.floor) == (W.LISTENING, F.BOT)
    assert owner.names == ["duck_output", "arm_reprompt", "resume_output", "arm_reprompt"]
    assert owner.views == [
        ("speech_started", "speaking", "barge_in"),
        ("false_barge_in", "barge_in", "listening"),
    ]


def test_data_travels_with_the_trigger_to_the_effect() -> None:
    machine, owner = _machine(W.LISTENING, F.CALLER)
    utterance = object()
    assert machine.fire(T.SPEECH_ENDED, utterance=utterance, speech_end=12.5)
    assert owner.names == ["resume_output", "start_turn"]  # floor first, then work
    data = owner.effects[1][1]
    assert data["utterance"] is utterance
    assert data["speech_end"] == 12.5
    assert (data["work"], data["floor"]) == (W.LISTENING, F.CALLER)  # the snapshot guards read


def test_a_confirmed_barge_in_is_one_view_change_with_both_machines_moved() -> None:
    machine, owner = _machine(W.SPEAKING, F.PAUSED)
    assert machine.fire(T.SPEECH_CONFIRMED)
    assert owner.names == ["resume_output", "interrupt_work"]  # resumed, then cleared, in one step
    assert owner.views == [("barge_in_confirmed", "barge_in", "listening")]
    assert [(m, d) for m, _t, _s, d in owner.transitions] == [("floor", "caller"), ("work", "listening")]


def test_a_trigger_fired_inside_an_effect_runs_after_the_current_one() -> None:
    machine, owner = _machine(W.LISTENING, F.CALLER)
    owner.on_effect["start_turn"] = lambda: machine.fire(T.TRANSCRIPT_EMPTY, gen=machine.generation)
    assert machine.fire(T.SPEECH_ENDED, utterance=None, speech_end=0.0)
    assert machine.work is W.LISTENING
    assert [t for _m, t, _s, _d in owner.transitions] == [T.SPEECH_ENDED, T.SPEECH_ENDED, T.TRANSCRIPT_EMPTY]


def test_every_way_out_of_a_paused_floor_opens_the_voice_again() -> None:
    # Whatever the work did meanwhile (finished, failed, was superseded), a feed left paused is a mute bot.
    for row in FLOOR_ROWS:
        if row.source is not None and F.PAUSED in row.source and row.dest not in (None, F.PAUSED):
            assert "resume_output" in row.effects, row


def test_every_view_edge_the_console_draws_is_reachable_from_the_tables() -> None:
    edges = view_edges()
    assert ("speaking", "barge_in", "speech_started") in edges
    assert ("barge_in", "speaking", "false_barge_in") in edges
    assert ("barge_in", "listening", "barge_in_confirmed") in edges
    assert all(src != dst for src, dst, _t in edges)


def test_readme_embeds_the_generated_diagram() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    assert f"```mermaid\n{mermaid_diagram()}\n```" in readme, "regenerate: python -m dialogue.machine"


def test_an_onset_over_the_voice_ducks_it_and_one_before_the_reply_holds_it() -> None:
    machine, owner = _machine(W.SPEAKING)
    assert machine.fire(T.SPEECH_STARTED)
    assert owner.names[0] == "duck_output"  # the voice goes on, quieter: a "mhm" leaves no gap
    assert machine.fire(T.SPEECH_PAUSED, utterance=None, speech_end_ms=0)
    assert owner.names[-1] == "judge_overlap"  # its words decide
    thinking, owner = _machine(W.THINKING)
    assert thinking.fire(T.SPEECH_STARTED)
    assert owner.names[0] == "pause_output"  # nothing plays yet: the reply's first audio waits
    assert thinking.fire(T.SPEECH_PAUSED, utterance=None, speech_end_ms=0)
    assert "judge_overlap" not in owner.names


@pytest.mark.parametrize(
    ("heard_ms", "claims_floor", "effect"),
    [
        (-300, False, "continue_turn"),  # began before the reply: the reply is dropped unheard
        (1000, False, "continue_turn"),
        (1001, False, "interrupt_work"),  # a reaction to the answer: keep what was heard
        (200, True, "interrupt_work"),  # "Stopp" over the first words stops, it adds nothing to the turn
    ],
)
def test_content_over_the_reply_s_first_words_continues_the_turn(
    heard_ms: int, claims_floor: bool, effect: str
) -> None:
    machine, owner = _machine(W.SPEAKING)
    assert machine.fire(T.SPEECH_STARTED)
    data = {"reply_heard_ms": heard_ms, "claims_floor": claims_floor, "continue_within_ms": 1000}
    assert machine.fire(T.SPEECH_CONFIRMED, **data)
    assert (machine.work, machine.floor) == (W.LISTENING, F.CALLER)
    assert effect in owner.names
    assert {"continue_turn", "interrupt_work"} & set(owner.names) == {effect}


def test_an_interruption_of_a_line_is_no_continuation() -> None:
    machine, owner = _machine(W.SPEAKING)
    assert machine.fire(T.SPEECH_CONFIRMED, reply_heard_ms=None, continue_within_ms=1000)
    assert "interrupt_work" in owner.names
    assert "continue_turn" not in owner.names
