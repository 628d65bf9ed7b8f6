"""The call's state machine: one declarative table, one ``AsyncMachine`` per call.

The table is the single source of truth for what may happen when; the diagram in README is generated from
it. Effects are named here and implemented by the call session as synchronous methods that only start or
cancel tasks: ``AsyncMachine`` cancels a running callback when the next event fires, so no callback may
await real work.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import structlog
from transitions import MachineError
from transitions.extensions.asyncio import AsyncMachine


class CallState(StrEnum):
    GREETING = "greeting"
    LISTENING = "listening"
    TRANSCRIBING = "transcribing"
    THINKING = "thinking"
    SPEAKING = "speaking"
    BARGE_IN = "barge_in"
    HANGUP = "hangup"


S = CallState
ANY = "*"


@dataclass(frozen=True, slots=True)
class Transition:
    trigger: str
    source: tuple[CallState, ...] | str
    dest: CallState | None
    """None: an internal transition (effect runs, state stays)."""
    effect: str | None = None
    """Name of the owner's method run after the transition (synchronous: starts or cancels work)."""
    condition: str | None = None
    """Name of the owner's predicate; the first row whose condition holds wins."""
    why: str = ""

    def sources(self) -> tuple[CallState, ...]:
        return tuple(CallState) if isinstance(self.source, str) else self.source


_INTERRUPTIBLE = (S.GREETING, S.SPEAKING, S.THINKING, S.TRANSCRIBING)

TRANSITIONS: tuple[Transition, ...] = (
    Transition(
        "greeting_done", (S.GREETING,), S.LISTENING, "arm_reprompt", why="greeting's last mark came back"
    ),
    Transition("speech_started", (S.LISTENING,), None, "disarm_reprompt", why="caller talks: no reprompt"),
    Transition(
        "speech_started",
        _INTERRUPTIBLE,
        S.BARGE_IN,
        "pause_output",
        why="tentative onset: stop feeding audio at once, keep the answer until it is confirmed",
    ),
    Transition(
        "barge_in_confirmed", (S.BARGE_IN,), S.LISTENING, "interrupt_turn", why="clear, cancel, keep heard"
    ),
    Transition("false_barge_in", (S.BARGE_IN,), S.GREETING, "resume_output", "resumes_greeting"),
    Transition("false_barge_in", (S.BARGE_IN,), S.SPEAKING, "resume_output", "resumes_speaking"),
    Transition("false_barge_in", (S.BARGE_IN,), S.THINKING, "resume_output", "resumes_thinking"),
    Transition("false_barge_in", (S.BARGE_IN,), S.TRANSCRIBING, "resume_output", "resumes_transcribing"),
    Transition("false_barge_in", (S.BARGE_IN,), S.LISTENING, "arm_reprompt", why="turn finished meanwhile"),
    Transition("speech_ended", (S.LISTENING,), S.TRANSCRIBING, "start_turn", why="caller's turn is over"),
    Transition("transcript_empty", (S.TRANSCRIBING,), S.LISTENING, "arm_reprompt", why="noise: say nothing"),
    Transition("transcript_ready", (S.TRANSCRIBING,), S.THINKING, why="the LLM streams the reply"),
    Transition(
        "reply_started", (S.THINKING, S.TRANSCRIBING, S.LISTENING), S.SPEAKING, why="first frame sent"
    ),
    Transition("playback_done", (S.SPEAKING,), S.LISTENING, "arm_reprompt", why="last mark came back"),
    Transition(
        "reply_failed",
        (S.THINKING, S.TRANSCRIBING, S.LISTENING),
        S.LISTENING,
        "arm_reprompt",
        why="not even a fallback could be voiced: listen again rather than hang",
    ),
    Transition("hangup", ANY, S.HANGUP, "end_call", why="caller, bot, limit or error ends the call"),
)

STATES: tuple[CallState, ...] = tuple(CallState)


def valid_triggers() -> dict[CallState, frozenset[str]]:
    """Which triggers the table accepts in each state (a condition may still make one a no-op)."""
    table: dict[CallState, set[str]] = {s: set() for s in CallState}
    for t in TRANSITIONS:
        for s in t.sources():
            if not (t.trigger == "hangup" and s is S.HANGUP):
                table[s].add(t.trigger)
    return {s: frozenset(v) for s, v in table.items()}


_VALID = valid_triggers()


class MachineOwner(Protocol):
    """The call session: implements the table's effects and conditions, receives every transition."""

    def on_transition(self, trigger: str, source: CallState, dest: CallState) -> None: ...


@dataclass(slots=True)
class TransitionRecord:
    trigger: str
    source: CallState
    dest: CallState
    monotonic: float


@dataclass(slots=True)
class _Counters:
    invalid: dict[str, int] = field(default_factory=dict)


class _InOrderMachine(AsyncMachine):
    """Runs a transition's callbacks one after another instead of gathering them as tasks.

    Every callback here is synchronous work (start or cancel a task, record, publish), so running them in
    parallel bought nothing; ``asyncio.gather`` made each non-empty callback list cost two passes of the
    event loop, several per transition. With two hundred calls a pass takes milliseconds, and those passes
    sat between a barge-in and its ``clear``, and between the end of a turn and its transcription.
    """

    @staticmethod
    async def await_all(
        callables: list[Callable[..., Coroutine[Any, Any, bool | None]]],
    ) -> list[bool | None]:
        return [await func() for func in callables]


class CallMachine:
    """One call's machine. ``fire`` is the only way in: serialized, never raises for an invalid trigger."""

    state: CallState

    def __init__(self, owner: MachineOwner, *, initial: CallState = S.GREETING) -> None:
        self._owner = owner
        self._lock = asyncio.Lock()
        self.log: list[TransitionRecord] = []
        self.counters = _Counters()
        self._log = structlog.get_logger()
        self._machine = _InOrderMachine(
            model=self,
            states=list(CallState),
            transitions=[_as_dict(t, owner) for t in TRANSITIONS],
            initial=initial,
            auto_transitions=False,
            send_event=False,
            model_override=False,
        )

    @property
    def invalid_triggers(self) -> int:
        return sum(self.counters.invalid.values())

    def can(self, trigger: str) -> bool:
        return trigger in _VALID[self.state]

    async def fire(self, trigger: str) -> bool:
        """True when the state changed or an internal transition ran; False for a counted invalid trigger."""
        async with self._lock:
            source = self.state
            if trigger not in _VALID[source]:
                self.counters.invalid[trigger] = self.counters.invalid.get(trigger, 0) + 1
                self._log.info("invalid_trigger", trigger=trigger, state=str(source))
                return False
            try:
                trigger_fn: Callable[[], Any] = getattr(self, trigger)
                done = bool(await trigger_fn())
            except MachineError as exc:  # translated at the boundary: a library refusal never ends a call
                self.counters.invalid[trigger] = self.counters.invalid.get(trigger, 0) + 1
                self._log.warning(
                    "machine_refused", trigger=trigger, state=str(source), detail=str(exc.value)
                )
                return False
            if done:
                dest = self.state
                self.log.append(TransitionRecord(trigger, source, dest, time.monotonic()))
                self._owner.on_transition(trigger, source, dest)
            return done


def _as_dict(t: Transition, owner: MachineOwner) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "trigger": t.trigger,
        "source": list(t.sources()) if t.source != ANY else "*",
        "dest": t.dest,
    }
    if t.effect:
        spec["after"] = getattr(owner, t.effect)
    if t.condition:
        spec["conditions"] = getattr(owner, t.condition)
    return spec


def mermaid_diagram() -> str:
    """The diagram README embeds, generated from the same table the calls run on."""
    lines = ["stateDiagram-v2", f"    [*] --> {S.GREETING.value}"]
    seen: set[tuple[str, str, str]] = set()
    for t in TRANSITIONS:
        if t.trigger == "hangup":
            continue
        for s in t.sources():
            dest = (t.dest or s).value
            key = (s.value, dest, t.trigger)
            if key not in seen:
                seen.add(key)
                lines.append(f"    {s.value} --> {dest}: {t.trigger}")
    lines.append(f"    note right of {S.HANGUP.value}: hangup from any state")
    lines.append(f"    {S.HANGUP.value} --> [*]")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - `python -m dialogue.machine` prints the README diagram
    print(mermaid_diagram())
