"""Feeds bot audio to the transport in near real time, keeping only a short lead buffered at the far end.

Twilio plays whatever it has buffered; it cannot be paused, only cleared. Keeping the lead short (200 ms by
default) means that pausing here silences the bot within that lead, while we decide whether the caller
really interrupts, and resuming after a backchannel loses nothing. A naive bot that sends the whole answer
at once can only ``clear`` and throw the answer away.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from media.transport import CallTransport

BYTES_PER_SECOND = 8000
UNDERRUN_MIN_S = 0.02
"""A far end dry for less than one 20 ms frame is jitter, not silence a caller hears."""


@dataclass(frozen=True, slots=True)
class _Mark:
    name: str


@dataclass(frozen=True, slots=True)
class _Call:
    fn: Callable[[], None]


class _Clear:
    pass


_CLEAR = _Clear()
_Item = bytes | _Mark | _Call | _Clear


class Playout:
    """One per call. ``enqueue_*`` and ``pause``/``resume``/``flush`` are synchronous and ordered.

    ``chunk_ms`` trades messages per second (CPU at 200 calls) against how finely the lead is kept:
    100 ms chunks are 10 messages a second per call, and with a 200 ms lead the far end always holds
    100–200 ms, enough to ride out a busy event loop without an underrun.
    """

    def __init__(
        self,
        transport: CallTransport,
        *,
        lead_ms: int = 200,
        chunk_ms: int = 100,
        on_sent: Callable[[bytes], None] | None = None,
        on_underrun: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._transport = transport
        self._lead = lead_ms / 1000
        self._chunk = max(20, chunk_ms) * BYTES_PER_SECOND // 1000
        self._on_sent = on_sent
        self._on_underrun = on_underrun
        self._clock = clock
        self._queue: deque[_Item] = deque()
        self._wake = asyncio.Event()
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._duck: bytes | None = None
        self._t_end = 0.0
        self.bytes_sent = 0
        self._queued_audio = 0
        self.underruns = 0
        """Times the far end ran dry mid-reply (see ``_check_dry``): what the caller hears as a stutter."""
        self._last_sent: _Item | None = None
        self._last_mark = ""
        self._gap_after_mark = 0.0
        self._held = False
        self._log = structlog.get_logger()

    # --- control (synchronous, called from state-machine effects) ------------------------------------------
    def enqueue_audio(self, ulaw: bytes) -> None:
        for i in range(0, len(ulaw), self._chunk):
            self._queue.append(ulaw[i : i + self._chunk])
        self._queued_audio += len(ulaw)
        self._poke()

    def enqueue_mark(self, name: str) -> None:
        self._queue.append(_Mark(name))
        self._poke()

    def enqueue_call(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` when everything queued before it has been handed to the transport."""
        self._queue.append(_Call(fn))
        self._poke()

    def _poke(self) -> None:
        self._wake.set()
        if self._waiter is not None:
            _resolve(self._waiter)

    def pause(self) -> None:
        self._paused = True
        self._held = True

    def resume(self) -> None:
        """Go on at full level, whether the feed was paused or ducked."""
        self._paused = False
        self._duck = None
        self._poke()

    def duck(self, table: bytes) -> None:
        """Send what follows through ``table`` (a μ-law level map, ``media.ducking``) until ``resume``."""
        self._duck = table

    def flush(self) -> list[str]:
        """Drop everything queued, then send ``clear``; returns the names of marks that were never sent."""
        dropped = [item.name for item in self._queue if isinstance(item, _Mark)]
        self._queue.clear()
        self._queued_audio = 0
        self._queue.append(_CLEAR)
        self._paused = False
        self._duck = None
        self._t_end = self._clock()
        self._poke()
        return dropped

    # --- state ------------------------------------------------------------------------------------------
    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def ducked(self) -> bool:
        return self._duck is not None

    @property
    def queued(self) -> bool:
        return bool(self._queue)

    @property
    def playing_until(self) -> float:
        """When the far end will have played everything sent so far (clock seconds)."""
        return self._t_end

    def start_of_last(self, nbytes: int) -> float:
        """When the last ``nbytes`` queued will start to play, if nothing pauses the feed."""
        ahead = (self._queued_audio - nbytes) / BYTES_PER_SECOND
        return max(self._clock(), self._t_end) + max(0.0, ahead)

    def audio_ahead_s(self) -> float:
        """Seconds until everything queued or sent so far has played, if nothing pauses the feed."""
        return self._queued_audio / BYTES_PER_SECOND + max(0.0, self._t_end - self._clock())

    def is_playing(self) -> bool:
        return self._t_end > self._clock() or any(isinstance(i, bytes) for i in self._queue)

    async def _sleep(self, seconds: float) -> None:
        """Until the lead has drained or a control call wakes us: a timer on a future, not ``wait_for``,
        which would create a task for every 100 ms chunk of every call."""
        self._wake.clear()
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        self._waiter = waiter
        timer = loop.call_later(seconds, _resolve, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    # --- the feeding task -------------------------------------------------------------------------------
    async def run(self) -> None:
        while True:
            if not self._queue or (self._paused and not isinstance(self._queue[0], _Clear)):
                self._wake.clear()
                await self._wake.wait()
                continue
            head = self._queue[0]
            if isinstance(head, bytes):
                now = self._clock()
                self._check_dry(now - self._t_end)
                self._t_end = max(self._t_end, now)
                ahead = self._t_end - now
                if ahead > self._lead:
                    await self._sleep(ahead - self._lead)
                    continue
                self._queue.popleft()
                self._queued_audio -= len(head)
                if self._duck is not None:
                    head = head.translate(self._duck)
                await self._transport.send_audio(head)
                self._t_end += len(head) / BYTES_PER_SECOND
                self.bytes_sent += len(head)
                self._last_sent = head
                if self._on_sent is not None:
                    self._on_sent(head)
            else:
                self._queue.popleft()
                if isinstance(head, _Mark):
                    self._mark_sent(head.name)
                    await self._transport.send_mark(head.name)
                elif isinstance(head, _Call):
                    head.fn()
                else:
                    self._last_sent, self._last_mark, self._gap_after_mark = _CLEAR, "", 0.0
                    await self._transport.clear()

    # --- underruns (seen on our own clock: the far end plays exactly what we sent, in real time) ----------
    def _check_dry(self, dry_s: float) -> None:
        """Before sending audio: did the far end run out while this reply was still going?

        Inside one segment (audio right after audio) any gap is an underrun. After a mark, the gap counts
        only if the next mark belongs to the same reply (``<tag>-<n>``), decided in ``_mark_sent``. A pause
        (the bot holding its voice for a possible barge-in) makes the gap deliberate.
        """
        held, self._held = self._held, False
        if dry_s < UNDERRUN_MIN_S or held:
            return
        if isinstance(self._last_sent, bytes):
            self._underrun(dry_s)
        elif isinstance(self._last_sent, _Mark):
            self._gap_after_mark = dry_s

    def _mark_sent(self, name: str) -> None:
        gap, self._gap_after_mark = self._gap_after_mark, 0.0
        if gap and self._last_mark and _reply_of(self._last_mark) == _reply_of(name):
            self._underrun(gap)
        self._last_sent, self._last_mark = _Mark(name), name

    def _underrun(self, dry_s: float) -> None:
        self.underruns += 1
        self._log.warning("playout_underrun", dry_ms=round(dry_s * 1000))
        if self._on_underrun is not None:
            self._on_underrun(dry_s)


def _reply_of(mark: str) -> str:
    head, sep, _tail = mark.rpartition("-")
    return head if sep and head else mark


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
