"""What the caller actually heard, reconstructed from Twilio's mark echoes.

A mark echo proves playback reached it, except after a ``clear``: Twilio then echoes every pending mark at
once, so those echoes prove nothing. The tracker remembers which marks were pending when a ``clear`` went
out and reports their echoes as not heard; the conversation history then keeps only words the caller heard.

The segment that was playing when the ``clear`` went out was partly heard. Its share is estimated from wall
clock time: playback of it began at the later of the previous echo and the moment its audio started to
go out, and runs at 8000 bytes/s. The heard prefix is cut back to a word boundary, because a half-spoken
word is not something the caller can be assumed to have understood.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

BYTES_PER_SECOND = 8000


class SegmentState(StrEnum):
    PENDING = "pending"
    HEARD = "heard"
    PARTIAL = "partial"
    FLUSHED = "flushed"


@dataclass(slots=True)
class Segment:
    mark: str
    text: str
    ulaw_bytes: int
    turn: int
    started_at: float
    """When its audio began to go out (estimated unless the session said)."""
    state: SegmentState = SegmentState.PENDING
    heard_chars: int = 0

    @property
    def heard(self) -> str:
        return self.text[: self.heard_chars]

    @property
    def cut(self) -> str:
        return self.text[self.heard_chars :].strip()


@dataclass(frozen=True, slots=True)
class PlaybackResult:
    """The verdict on one mark echo. ``known`` is False for a mark the tracker never registered."""

    mark: str
    heard: bool
    known: bool = True
    turn: int | None = None


@dataclass(frozen=True, slots=True)
class TurnHearing:
    """For one bot turn: words heard, words cut by a ``clear``, words still queued for playback."""

    turn: int
    heard: str
    cut: str
    pending: str
    interrupted: bool

    @property
    def complete(self) -> bool:
        return not self.pending and not self.interrupted


@dataclass(slots=True)
class _Turn:
    segments: list[Segment] = field(default_factory=list)


class PlaybackTracker:
    """One per call. Not thread-safe; used from the call's event loop only."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._by_mark: dict[str, Segment] = {}
        self._turns: dict[int, _Turn] = {}
        self._pending: list[Segment] = []
        self._flushed: set[str] = set()
        self._last_echo_at: float | None = None
        self._last_registered_at: float | None = None

    # --- fed by the session --------------------------------------------------------------------------

    def segment(
        self, mark: str, text: str, ulaw_bytes: int, *, turn: int = 0, started_at: float | None = None
    ) -> None:
        """Register a piece of speech whose audio has just been sent; call right before sending ``mark``.

        Without ``started_at`` the audio is assumed to have been paced out in real time, so it began
        ``ulaw_bytes / 8000`` seconds ago (never before the previous segment was registered).
        """
        if mark in self._by_mark:
            raise ValueError(f"mark {mark!r} registered twice")
        now = self._clock()
        if started_at is None:
            started_at = now - ulaw_bytes / BYTES_PER_SECOND
            if self._last_registered_at is not None:
                started_at = max(started_at, self._last_registered_at)
        seg = Segment(mark=mark, text=text, ulaw_bytes=ulaw_bytes, turn=turn, started_at=started_at)
        self._by_mark[mark] = seg
        self._turns.setdefault(turn, _Turn()).segments.append(seg)
        self._pending.append(seg)
        self._last_registered_at = now

    def on_clear(self) -> list[str]:
        """A ``clear`` was sent: everything pending is flushed; returns the flushed marks in order."""
        if not self._pending:
            return []
        now = self._clock()
        playing = self._pending[0]
        since = playing.started_at
        if self._last_echo_at is not None:
            since = max(since, self._last_echo_at)
        played_bytes = max(0.0, (now - since) * BYTES_PER_SECOND)
        if played_bytes > 0 and playing.ulaw_bytes > 0:
            share = min(1.0, played_bytes / playing.ulaw_bytes)
            playing.heard_chars = _word_prefix(playing.text, share)
            playing.state = SegmentState.PARTIAL if playing.heard_chars else SegmentState.FLUSHED
        else:
            playing.state = SegmentState.FLUSHED
        for seg in self._pending[1:]:
            seg.state = SegmentState.FLUSHED
        flushed = [seg.mark for seg in self._pending]
        self._flushed.update(flushed)
        self._pending.clear()
        return flushed

    def on_echo(self, mark: str) -> PlaybackResult:
        """Twilio echoed ``mark``; echoes arrive in order, so earlier pending marks were played too."""
        seg = self._by_mark.get(mark)
        if seg is None:
            return PlaybackResult(mark=mark, heard=False, known=False)
        if mark in self._flushed:
            self._flushed.discard(mark)
            return PlaybackResult(mark=mark, heard=False, turn=seg.turn)
        if seg in self._pending:
            idx = self._pending.index(seg)
            for done in self._pending[: idx + 1]:
                done.state = SegmentState.HEARD
                done.heard_chars = len(done.text)
            del self._pending[: idx + 1]
            self._last_echo_at = self._clock()
        return PlaybackResult(mark=mark, heard=seg.state is SegmentState.HEARD, turn=seg.turn)

    # --- asked by the session ------------------------------------------------------------------------

    @property
    def pending(self) -> tuple[str, ...]:
        """Marks sent and neither echoed nor flushed, oldest first."""
        return tuple(seg.mark for seg in self._pending)

    @property
    def all_played(self) -> bool:
        return not self._pending

    def hearing(self, turn: int) -> TurnHearing:
        segs = self._turns.get(turn, _Turn()).segments
        heard = [s.heard.strip() for s in segs if s.state in (SegmentState.HEARD, SegmentState.PARTIAL)]
        cut = [s.cut for s in segs if s.state in (SegmentState.PARTIAL, SegmentState.FLUSHED)]
        pending = [s.text for s in segs if s.state is SegmentState.PENDING]
        interrupted = any(s.state in (SegmentState.PARTIAL, SegmentState.FLUSHED) for s in segs)
        return TurnHearing(
            turn=turn,
            heard=_join(heard),
            cut=_join(cut),
            pending=_join(pending),
            interrupted=interrupted,
        )

    def heard_text(self, turn: int) -> str:
        return self.hearing(turn).heard

    def heard_until(self, mark: str) -> str:
        """Text of ``mark``'s turn heard up to and including ``mark``'s segment."""
        seg = self._by_mark.get(mark)
        if seg is None:
            return ""
        segs = self._turns[seg.turn].segments
        upto = segs[: segs.index(seg) + 1]
        return _join([s.heard.strip() for s in upto if s.state in (SegmentState.HEARD, SegmentState.PARTIAL)])

    def forget(self, turn: int) -> None:
        """Drop a finished turn's segments so a long call does not keep its whole history here."""
        for seg in self._turns.pop(turn, _Turn()).segments:
            self._by_mark.pop(seg.mark, None)
            self._flushed.discard(seg.mark)
            if seg in self._pending:
                self._pending.remove(seg)


def _word_prefix(text: str, share: float) -> int:
    """Characters of ``text`` heard when ``share`` of its audio played, cut back to a whole word."""
    if share >= 1.0:
        return len(text)
    limit = int(len(text) * share)
    if limit < len(text) and not text[limit].isspace():
        space = text.rfind(" ", 0, limit + 1)
        limit = space if space > 0 else 0
    return len(text[:limit].rstrip())


def _join(parts: list[str]) -> str:
    return " ".join(p for p in parts if p)
