"""The call's spine: two small orthogonal state machines and the one table that drives both.

*work* says how far the bot's current piece of work has got (greeting, listening, transcribing, thinking,
speaking); *floor* says who may talk (the bot, nobody while a caller's onset is judged, the caller). Keeping
them apart is what makes barge-in simple: a caller's "mhm" pauses the floor and gives it back, and the work
machine, which went on meanwhile, was never disturbed, so there is no "resume where you were" to remember.

Every row names a trigger, its source and destination, the effects (methods of the call session that only
start or cancel tasks, always synchronous) and an optional guard: a pure function of the event data, which
always carries a snapshot of both machines' states. Data travels with the trigger (``transitions`` runs with
``send_event=True``); work tasks fire their progress with the generation of the work they belong to, and a
trigger from superseded work is dropped and counted, never mistaken for the current work's progress.
The README diagram and the console's diagram are generated from these tables.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import structlog
from transitions import EventData, Machine


class Trigger(StrEnum):
    SPEECH_STARTED = "speech_started"
    SPEECH_CONFIRMED = "barge_in_confirmed"
    SPEECH_DISCARDED = "false_barge_in"
    SPEECH_PAUSED = "speech_paused"
    SPEECH_ENDED = "speech_ended"
    TRANSCRIPT_EMPTY = "transcript_empty"
    TRANSCRIPT_READY = "transcript_ready"
    REPLY_STARTED = "reply_started"
    PLAYBACK_DONE = "playback_done"
    REPLY_FAILED = "reply_failed"
    TAKE_OVER = "take_over"
    HANGUP = "hangup"


class Work(StrEnum):
    GREETING = "greeting"
    LISTENING = "listening"
    TRANSCRIBING = "transcribing"
    THINKING = "thinking"
    SPEAKING = "speaking"
    HANGUP = "hangup"


class Floor(StrEnum):
    BOT = "bot"
    PAUSED = "paused"
    CALLER = "caller"


CallState = Work
"""What tests and the console call "the state": the work machine's state."""

BARGE_IN_VIEW = "barge_in"
"""The console's name for "the floor is paused": the bot fell silent at an onset, the verdict is pending."""

Data = Mapping[str, Any]
Guard = Callable[[Data], bool]

BUSY = (Work.GREETING, Work.TRANSCRIBING, Work.THINKING, Work.SPEAKING)
TALKING = (Work.GREETING, Work.SPEAKING)


def work_busy(data: Data) -> bool:
    return data["work"] in BUSY


def work_idle(data: Data) -> bool:
    return data["work"] is Work.LISTENING


def work_talking(data: Data) -> bool:
    return data["work"] in TALKING


def work_not_talking(data: Data) -> bool:
    return data["work"] not in TALKING


def floor_paused(data: Data) -> bool:
    return data["floor"] is Floor.PAUSED


@dataclass(frozen=True, slots=True)
class Row:
    trigger: Trigger
    source: tuple[StrEnum, ...] | None
    """None: from every state but the final one."""
    dest: StrEnum | None
    """None: internal (effects run, the state stays)."""
    effects: tuple[str, ...] = ()
    guard: Guard | None = None
    why: str = ""


F, W, T = Floor, Work, Trigger

FLOOR_ROWS: tuple[Row, ...] = (
    Row(T.SPEECH_STARTED, (F.BOT,), F.PAUSED, ("pause_output",), work_busy, "onset over the bot: pause"),
    Row(T.SPEECH_STARTED, (F.BOT,), F.CALLER, ("disarm_reprompt",), work_idle, "the caller talks"),
    Row(T.SPEECH_CONFIRMED, (F.PAUSED, F.CALLER), F.CALLER, why="a real interruption"),
    Row(T.SPEECH_DISCARDED, (F.PAUSED,), F.BOT, ("resume_output",), work_busy, "a backchannel"),
    Row(T.SPEECH_DISCARDED, (F.PAUSED, F.CALLER), F.BOT, ("resume_output", "arm_reprompt"), work_idle),
    Row(T.SPEECH_PAUSED, (F.CALLER,), None, ("prefetch",), why="transcribe speculatively"),
    Row(T.SPEECH_PAUSED, (F.PAUSED,), None),
    Row(T.SPEECH_ENDED, (F.PAUSED,), F.BOT, ("resume_output",), work_talking, "too short to interrupt"),
    Row(T.SPEECH_ENDED, (F.PAUSED, F.CALLER), F.BOT, (), work_not_talking, "the caller's turn is over"),
)

WORK_ROWS: tuple[Row, ...] = (
    Row(T.SPEECH_CONFIRMED, BUSY, W.LISTENING, ("interrupt_work",), why="clear, cancel, keep what was heard"),
    Row(T.SPEECH_ENDED, (W.LISTENING,), W.TRANSCRIBING, ("start_turn",)),
    Row(
        T.SPEECH_ENDED,
        (W.TRANSCRIBING, W.THINKING),
        W.TRANSCRIBING,
        ("restart_turn",),
        floor_paused,
        "the caller went on before the bot spoke: one turn however many pauses",
    ),
    Row(T.TRANSCRIPT_EMPTY, (W.TRANSCRIBING,), W.LISTENING, ("arm_reprompt",), why="noise: say nothing"),
    Row(T.TRANSCRIPT_READY, (W.TRANSCRIBING,), W.THINKING),
    Row(T.REPLY_STARTED, (W.LISTENING, W.TRANSCRIBING, W.THINKING), W.SPEAKING, why="first audio sent"),
    Row(T.PLAYBACK_DONE, (W.GREETING, W.SPEAKING, W.LISTENING), W.LISTENING, ("arm_reprompt",)),
    Row(T.REPLY_FAILED, (*BUSY, W.LISTENING), W.LISTENING, ("arm_reprompt",), why="not even a fallback"),
    Row(T.TAKE_OVER, (*BUSY, W.LISTENING), W.LISTENING, ("replace_work",), why="DTMF, reprompt, time limit"),
    Row(T.HANGUP, None, W.HANGUP, ("end_call",), why="caller, bot, limit or error ends the call"),
)

WORK_PROGRESS = frozenset(
    {T.TRANSCRIPT_EMPTY, T.TRANSCRIPT_READY, T.REPLY_STARTED, T.PLAYBACK_DONE, T.REPLY_FAILED}
)
"""Triggers only work tasks fire: they must carry their work's generation."""


def _sources(row: Row, states: type[StrEnum]) -> tuple[StrEnum, ...]:
    if row.source is not None:
        return row.source
    return tuple(s for s in states if s is not W.HANGUP)


def _step(
    rows: tuple[Row, ...], states: type[StrEnum], state: StrEnum, trigger: Trigger, data: Data
) -> Row | None:
    for row in rows:
        matches = row.trigger is trigger and state in _sources(row, states)
        if matches and (row.guard is None or row.guard(data)):
            return row
    return None


def outcome(work: Work, floor: Floor, trigger: Trigger) -> tuple[Work, Floor] | None:
    """Where the tables take the call, as a pure function; None when neither machine accepts the trigger."""
    data = {"work": work, "floor": floor}
    f = _step(FLOOR_ROWS, Floor, floor, trigger, data)
    w = _step(WORK_ROWS, Work, work, trigger, data)
    if f is None and w is None:
        return None
    new_floor = Floor(f.dest) if f is not None and f.dest is not None else floor
    new_work = Work(w.dest) if w is not None and w.dest is not None else work
    return new_work, new_floor


def view(work: Work, floor: Floor) -> str:
    """One name for both machines, for the console: the work state, or ``barge_in`` while paused."""
    return BARGE_IN_VIEW if floor is Floor.PAUSED and work is not Work.HANGUP else work.value


VIEW_STATES: tuple[str, ...] = (*(w.value for w in Work if w is not Work.HANGUP), BARGE_IN_VIEW, "hangup")


def view_edges() -> list[tuple[str, str, str]]:
    """Every change of the console's view the tables allow: (source, dest, trigger), hangup excluded."""
    edges: list[tuple[str, str, str]] = []
    for work, floor, trigger in itertools.product(Work, Floor, Trigger):
        if work is Work.HANGUP or trigger is Trigger.HANGUP:
            continue
        result = outcome(work, floor, trigger)
        if result is None:
            continue
        edge = (view(work, floor), view(*result), trigger.value)
        if edge[0] != edge[1] and edge not in edges:
            edges.append(edge)
    return edges


class MachineOwner(Protocol):
    """The call session: implements the effects; ``on_transition`` sees every transition of either machine."""

    def on_transition(self, machine: str, trigger: Trigger, source: str, dest: str) -> None: ...

    def on_view(self, trigger: Trigger, source: str, dest: str) -> None:
        """The console's one-name view changed (once per trigger, after both machines moved)."""


@dataclass(slots=True)
class TransitionRecord:
    machine: str
    trigger: Trigger
    source: str
    dest: str
    monotonic: float


@dataclass(slots=True)
class Counters:
    invalid: dict[str, int] = field(default_factory=dict)
    stale: dict[str, int] = field(default_factory=dict)


class _Region:
    """One ``transitions.Machine`` over one table; the model is this object."""

    state: str

    def __init__(
        self, name: str, rows: tuple[Row, ...], states: type[StrEnum], initial: StrEnum, owner: Any
    ) -> None:
        self.name = name
        self.rows = rows
        self.states = states
        specs = []
        for row in rows:
            spec: dict[str, Any] = {
                "trigger": row.trigger.value,
                "source": [s.value for s in _sources(row, states)],
                "dest": row.dest.value if row.dest is not None else None,
                "after": [_effect(owner, e) for e in row.effects],
            }
            if row.guard is not None:
                spec["conditions"] = [_guard(row.guard)]
            specs.append(spec)
        self.machine = Machine(
            model=self,
            states=[s.value for s in states],
            transitions=specs,
            initial=initial.value,
            auto_transitions=False,
            send_event=True,
            model_override=False,
        )

    def accepts(self, trigger: Trigger) -> bool:
        return any(
            r.trigger is trigger and self.states(self.state) in _sources(r, self.states) for r in self.rows
        )


def _effect(owner: Any, name: str) -> Callable[[EventData], None]:
    method = getattr(owner, name)
    return lambda event: method(event.kwargs)


def _guard(guard: Guard) -> Callable[[EventData], bool]:
    return lambda event: guard(event.kwargs)


class CallMachine:
    """Both machines of one call. ``fire`` is the only way in: synchronous, never raises for a bad trigger.

    Effects only start or cancel tasks, so a transition never awaits anything and never gives the event loop
    away between a barge-in and its ``clear``. A trigger fired from inside an effect is queued and runs after.
    """

    def __init__(self, owner: MachineOwner, *, work: Work = Work.GREETING, floor: Floor = Floor.BOT) -> None:
        self._owner = owner
        self._work = _Region("work", WORK_ROWS, Work, work, owner)
        self._floor = _Region("floor", FLOOR_ROWS, Floor, floor, owner)
        self.generation = 0
        self.counters = Counters()
        self.log: list[TransitionRecord] = []
        self._queue: list[tuple[Trigger, int | None, dict[str, Any]]] = []
        self._firing = False
        self._logger = structlog.get_logger()

    @property
    def work(self) -> Work:
        return Work(self._work.state)

    @property
    def floor(self) -> Floor:
        return Floor(self._floor.state)

    @property
    def view(self) -> str:
        return view(self.work, self.floor)

    @property
    def invalid_triggers(self) -> int:
        return sum(self.counters.invalid.values())

    @property
    def stale_triggers(self) -> int:
        return sum(self.counters.stale.values())

    def next_generation(self) -> int:
        """A new piece of work begins: progress of every older one is stale from now on."""
        self.generation += 1
        return self.generation

    def fire(self, trigger: Trigger, *, gen: int | None = None, **data: Any) -> bool:
        """True when either machine took the trigger; False for a stale, refused or invalid one."""
        if self._firing:
            self._queue.append((trigger, gen, data))
            return True
        self._firing = True
        try:
            taken = self._fire(trigger, gen, data)
            while self._queue:
                self._fire(*self._queue.pop(0))
            return taken
        finally:
            self._firing = False

    def _fire(self, trigger: Trigger, gen: int | None, data: dict[str, Any]) -> bool:
        if trigger in WORK_PROGRESS and gen != self.generation:
            self.counters.stale[trigger] = self.counters.stale.get(trigger, 0) + 1
            self._logger.info("stale_trigger", trigger=str(trigger), gen=gen, current=self.generation)
            return False
        regions = [r for r in (self._floor, self._work) if r.accepts(trigger)]
        event = {**data, "work": self.work, "floor": self.floor, "gen": gen}
        before = self.view
        taken = False
        for region in regions:
            source = region.state
            if region.machine.events[trigger.value].trigger(region, **event):
                taken = True
                self.log.append(
                    TransitionRecord(region.name, trigger, source, region.state, time.monotonic())
                )
                self._owner.on_transition(region.name, trigger, source, region.state)
        if not taken:  # no row, or no row whose guard holds: nothing took it
            self.counters.invalid[trigger] = self.counters.invalid.get(trigger, 0) + 1
            self._logger.warning(
                "invalid_trigger", trigger=str(trigger), work=event["work"], floor=event["floor"]
            )
        elif self.view != before:
            self._owner.on_view(trigger, before, self.view)
        return taken


def mermaid_diagram() -> str:
    """The diagram README embeds: both machines as concurrent regions of one call, from the tables."""
    lines = ["stateDiagram-v2", "    state call {"]
    for rows, states, initial in ((WORK_ROWS, Work, Work.GREETING), (FLOOR_ROWS, Floor, Floor.BOT)):
        if rows is FLOOR_ROWS:
            lines.append("        --")
        lines.append(f"        [*] --> {initial.value}")
        for row in rows:
            if row.trigger is Trigger.HANGUP:
                continue
            guard = f" [{row.guard.__name__}]" if row.guard is not None else ""
            for source in _sources(row, states):
                dest = (row.dest or source).value
                lines.append(f"        {source.value} --> {dest}: {row.trigger.value}{guard}")
    lines.append("    }")
    lines.append("    [*] --> call")
    lines.append("    call --> [*]: hangup")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - `python -m dialogue.machine` prints the README diagram
    print(mermaid_diagram())
