"""Twilio's side of playback: a buffer drained at 8000 bytes/s, marks due when playback passes them.

Time comes from a ``SimClock``: real monotonic time plus whatever the caller fast-forwarded. Fast-forwarding
1 s of caller audio moves playback on by 1 s too, so tests do not wait for audio that nobody listens to,
while audio the bot paces in real time still plays in real time.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

BYTES_PER_SECOND = 8000


class SimClock:
    """``source`` is the real time the skips are added to; tests of the playback model pass a frozen one,
    so what they assert does not depend on how fast the machine runs the lines between two skips."""

    def __init__(self, source: Callable[[], float] = time.monotonic) -> None:
        self._source = source
        self._skipped = 0.0

    def now(self) -> float:
        return self._source() + self._skipped

    def skip(self, seconds: float) -> None:
        if seconds > 0:
            self._skipped += seconds

    @property
    def skipped(self) -> float:
        return self._skipped


@dataclass(slots=True)
class _Chunk:
    starts: float
    data: bytes

    @property
    def ends(self) -> float:
        return self.starts + len(self.data) / BYTES_PER_SECOND


@dataclass(frozen=True, slots=True)
class Gap:
    """Playback ran dry, then more audio came: Twilio played silence for ``seconds`` in the bot's voice."""

    seconds: float
    resumed_at: float
    """``time.monotonic()`` when the audio ending the gap arrived (real time, to match caller speech)."""
    mark_before: str | None
    """The last mark sent between the audio before the gap and the audio after it (None: mid-segment)."""
    mark_after: str | None = None
    """The first mark the bot sent after the gap, filled in when it arrives."""


@dataclass(frozen=True, slots=True)
class PendingMark:
    name: str
    due: float
    """Clock time at which playback passes this mark."""


class Playout:
    def __init__(self, clock: SimClock) -> None:
        self._clock = clock
        self._chunks: deque[_Chunk] = deque()
        self._marks: deque[PendingMark] = deque()
        self._drain_at = 0.0
        self.heard = bytearray()
        """Audio the caller has heard so far (played and not cleared)."""
        self.dropped_bytes = 0
        self.gaps: list[Gap] = []
        """Every time playback ran dry between two pieces of bot audio (not across a ``clear``)."""
        self._had_audio = False
        self._mark_since_audio: str | None = None

    def add_audio(self, data: bytes) -> float:
        """Queues ``data``; returns when it starts to play (now, if the buffer was empty)."""
        now = self._clock.now()
        if self._had_audio and now > self._drain_at:
            self.gaps.append(Gap(now - self._drain_at, time.monotonic(), self._mark_since_audio))
        self._had_audio = True
        self._mark_since_audio = None
        starts = max(now, self._drain_at)
        self._chunks.append(_Chunk(starts, data))
        self._drain_at = starts + len(data) / BYTES_PER_SECOND
        return starts

    def add_mark(self, name: str) -> PendingMark:
        mark = PendingMark(name, max(self._clock.now(), self._drain_at))
        self._mark_since_audio = name
        for i in range(len(self.gaps) - 1, -1, -1):
            if self.gaps[i].mark_after is not None:
                break
            self.gaps[i] = replace(self.gaps[i], mark_after=name)
        self._marks.append(mark)
        return mark

    def due_marks(self) -> list[PendingMark]:
        """Marks playback has passed, in order; removes them."""
        now = self._clock.now()
        self._settle(now)
        due = []
        while self._marks and self._marks[0].due <= now:
            due.append(self._marks.popleft())
        return due

    def clear(self) -> list[PendingMark]:
        """Drops what has not played; returns every pending mark, all to be echoed at once."""
        now = self._clock.now()
        self._settle(now)
        if self._chunks and self._chunks[0].starts < now:
            head = self._chunks.popleft()
            played = int((now - head.starts) * BYTES_PER_SECOND)
            self.heard += head.data[:played]
            self.dropped_bytes += len(head.data) - played
        self.dropped_bytes += sum(len(c.data) for c in self._chunks)
        self._chunks.clear()
        self._drain_at = now
        self._had_audio = False  # what comes after a clear is a new reply, not a late continuation
        self._mark_since_audio = None
        flushed = list(self._marks)
        self._marks.clear()
        return flushed

    @property
    def next_due(self) -> float | None:
        return self._marks[0].due if self._marks else None

    @property
    def drain_at(self) -> float:
        return self._drain_at

    @property
    def playing(self) -> bool:
        return self._drain_at > self._clock.now()

    @property
    def pending_marks(self) -> tuple[str, ...]:
        return tuple(m.name for m in self._marks)

    def settle(self) -> None:
        """Moves fully played audio into ``heard``."""
        self._settle(self._clock.now())

    def _settle(self, now: float) -> None:
        while self._chunks and self._chunks[0].ends <= now:
            self.heard += self._chunks.popleft().data
