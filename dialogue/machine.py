"""The call's spine: two small orthogonal state machines and the one table that drives both.

*work* says how far the bot's current piece of work has got (greeting, listening, transcribing, thinking,
speaking); *floor* says who may talk (the bot, nobody while a caller's onset is judged, the caller). Keeping
them apart is what makes barge-in simple: a caller's "mhm" pauses the floor and gives it back, and the work
machine, which went on meanwhile, was never disturbed, so there is no "resume where you were" to remember.

Every row (in ``dialogue.table``) names a trigger, its source and destination, the effects (methods of
the call session that only start or cancel tasks, always synchronous) and an optional guard: a pure
function of the event data, which always carries a snapshot of both machines' states. Data travels with
the trigger (``transitions`` runs with ``send_event=True``); work tasks fire their progress with the
generation of the work they belong to, and a trigger from superseded work is dropped and counted, never
mistaken for the current work's progress.
The README diagram and the console's diagram are generated from these tables.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import structlog
from transitions import EventData, Machine

from dialogue.table import (
    BARGE_IN_VIEW,
    BUSY,
    FLOOR_ROWS,
    TALKING,
    VIEW_STATES,
    WORK_PROGRESS,
    WORK_ROWS,
    CallState,
    Floor,
    Guard,
    Row,
    Trigger,
    Work,
    outcome,
    sources,
    view,
    view_edges,
)

__all__ = [
    "BARGE_IN_VIEW",
    "BUSY",
    "FLOOR_ROWS",
    "TALKING",
    "VIEW_STATES",
    "WORK_ROWS",
    "CallMachine",
    "CallState",
    "Floor",
    "Row",
    "Trigger",
    "Work",
    "mermaid_diagram",
    "outcome",
    "view",
    "view_edges",
]


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
                "source": [s.value for s in sources(row, states)],
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
            r.trigger is trigger and self.states(self.state) in sources(r, self.states) for r in self.rows
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
            for source in sources(row, states):
                dest = (row.dest or source).value
                lines.append(f"        {source.value} --> {dest}: {row.trigger.value}{guard}")
    lines.append("    }")
    lines.append("    [*] --> call")
    lines.append("    call --> [*]: hangup")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - `python -m dialogue.machine` prints the README diagram
    print(mermaid_diagram())
