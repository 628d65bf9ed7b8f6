"""The call's two machines as data: triggers, states, guards and the rows that join them.

*work* says how far the bot's current job has got (greeting, listening, transcribing, thinking, speaking);
*floor* says who may talk (the bot, nobody while a caller's onset is judged, the caller). A row names a
trigger, its sources and destination, the effects (methods of the call session that only start or cancel
tasks) and an optional guard: a pure function of the event data, which always carries a snapshot of both
states. ``outcome`` reads the tables without running anything, so tests and diagrams share one truth.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Trigger(StrEnum):
    SPEECH_STARTED = "speech_started"
    SPEECH_CONFIRMED = "barge_in_confirmed"
    SPEECH_DISCARDED = "false_barge_in"
    SPEECH_PAUSED = "speech_paused"
    SPEECH_ENDED = "speech_ended"
    TURN_LIKELY_OVER = "turn_likely_over"
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


def caller_goes_on(data: Data) -> bool:
    """Speech with content (no stop word) that began before the reply to the caller's turn had played
    ``continue_within_ms`` (``reply_heard_ms``; None when the bot is not answering a turn) continues it."""
    heard = data.get("reply_heard_ms")
    return heard is not None and heard <= data.get("continue_within_ms", 0) and not data.get("claims_floor")


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
    # Every row that leaves ``paused`` resumes the feed: whatever the work did meanwhile, the floor is open
    # again (a confirmed barge-in then clears what was queued, in the work machine's effect).
    Row(T.SPEECH_STARTED, (F.BOT,), F.PAUSED, ("duck_output",), work_talking, "onset over the bot: duck"),
    Row(T.SPEECH_STARTED, (F.BOT,), F.PAUSED, ("pause_output",), work_busy, "onset before the reply: hold"),
    Row(T.SPEECH_STARTED, (F.BOT,), F.CALLER, ("disarm_reprompt",), work_idle, "the caller talks"),
    Row(T.SPEECH_CONFIRMED, (F.PAUSED, F.CALLER), F.CALLER, ("resume_output",), why="a real interruption"),
    Row(T.SPEECH_DISCARDED, (F.PAUSED,), F.BOT, ("resume_output",), work_busy, "a backchannel"),
    Row(T.SPEECH_DISCARDED, (F.PAUSED, F.CALLER), F.BOT, ("resume_output", "arm_reprompt"), work_idle),
    Row(T.SPEECH_PAUSED, (F.CALLER,), None, ("prefetch",), why="transcribe speculatively"),
    Row(T.SPEECH_PAUSED, (F.PAUSED,), None, ("judge_overlap",), work_talking, "backchannel or interruption?"),
    Row(T.SPEECH_PAUSED, (F.PAUSED,), None),
    Row(T.TURN_LIKELY_OVER, (F.CALLER,), None, ("preempt",), work_idle, "start the reply, hold its audio"),
    Row(T.TURN_LIKELY_OVER, (F.CALLER, F.PAUSED), None, why="the bot is at work on a turn: nothing to start"),
    Row(T.SPEECH_ENDED, (F.PAUSED,), F.BOT, ("resume_output",), work_talking, "too short to interrupt"),
    Row(
        T.SPEECH_ENDED,
        (F.PAUSED, F.CALLER),
        F.BOT,
        ("resume_output",),
        work_not_talking,
        "the caller's turn is over",
    ),
)

WORK_ROWS: tuple[Row, ...] = (
    Row(
        T.SPEECH_CONFIRMED,
        (W.TRANSCRIBING, W.THINKING, W.SPEAKING),
        W.LISTENING,
        ("continue_turn",),
        caller_goes_on,
        "the caller went on over the reply's first words: clear, one turn",
    ),
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


def sources(row: Row, states: type[StrEnum]) -> tuple[StrEnum, ...]:
    if row.source is not None:
        return row.source
    return tuple(s for s in states if s is not W.HANGUP)


def _step(
    rows: tuple[Row, ...], states: type[StrEnum], state: StrEnum, trigger: Trigger, data: Data
) -> Row | None:
    for row in rows:
        matches = row.trigger is trigger and state in sources(row, states)
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
