"""One timer for all calls, and the caller it drives: real-time frames, speech queued, the bot listened to.

To keep 200 calls in one process cheap, one ``FrameClock`` task sends the frames of every call (no timer per
call), and waiting never polls faster than 10 times a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from simulator.caller_audio import _MEDIA, FRAME_S, SILENT_PAYLOAD, Speech
from simulator.record import Utterance
from simulator.twilio import TwilioSimulator


class FrameClock:
    """Sends the next 20 ms frame of every registered call when it falls due, from a single task.

    Each call keeps its own phase (its frames are due every 20 ms from when it joined); the task wakes every
    ``tick_s`` and sends all that are due, catching up in a burst if the loop was late, so that the audio a
    call has sent always equals the wall time it has been connected. ``lag`` collects how late frames went
    out: the simulator's own health, reported next to the bot's figures.
    """

    def __init__(self, tick_s: float = 0.005) -> None:
        self._tick = tick_s
        self._callers: list[Caller] = []
        self._task: asyncio.Task[None] | None = None
        self.lag: list[float] = []
        self._lag_every = 0

    def add(self, caller: Caller) -> None:
        caller.next_frame_at = time.monotonic()
        self._callers.append(caller)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="frame-clock")

    def remove(self, caller: Caller) -> None:
        with contextlib.suppress(ValueError):
            self._callers.remove(caller)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        next_tick = time.monotonic()
        while True:
            now = time.monotonic()
            for caller in list(self._callers):
                while caller.next_frame_at <= now:
                    self._lag_every += 1
                    if self._lag_every % 10 == 0 and len(self.lag) < 200_000:
                        self.lag.append(now - caller.next_frame_at)
                    caller.next_frame_at += FRAME_S
                    if not await caller.send_next_frame():
                        self.remove(caller)
                        break
            next_tick = max(next_tick + self._tick, time.monotonic())
            await asyncio.sleep(next_tick - time.monotonic())


@dataclass(slots=True)
class _Piece:
    payloads: Sequence[str]
    done: asyncio.Future[None]
    utterance: Utterance | None = None
    index: int = 0


class Caller:
    """Drives one connected ``TwilioSimulator``: its frames are sent by a shared ``FrameClock``, continuously,
    in real time (the simulator's own reader, playout and mark echo are used as they are)."""

    def __init__(self, sim: TwilioSimulator, frame_clock: FrameClock) -> None:
        self.sim = sim
        self.record = sim.record
        self.playout = sim.playout
        self._frame_clock = frame_clock
        self._pieces: deque[_Piece] = deque()
        self.next_frame_at = 0.0
        self.dtmf_latencies: list[float] = []
        self.missing: list[str] = []
        """What the caller waited for in vain (``no reply``, ``no clear``, ...)."""

    @property
    def closed(self) -> bool:
        return self.sim.closed

    def begin_streaming(self) -> None:
        self._frame_clock.add(self)

    def stop_streaming(self) -> None:
        self._frame_clock.remove(self)
        for piece in self._pieces:
            if not piece.done.done():
                piece.done.set_result(None)
        self._pieces.clear()

    async def send_next_frame(self) -> bool:
        """Called by the clock: the next frame of speech, else silence. False once the call is over."""
        sim = self.sim
        ws = sim._ws  # the simulator's own socket, sequence and lock: numbering stays in one place
        if sim.closed or ws is None or not sim._started:
            self.stop_streaming()
            return False
        piece = self._pieces[0] if self._pieces else None
        payload = SILENT_PAYLOAD if piece is None else piece.payloads[piece.index]
        async with sim._send_lock:
            sim._seq += 1
            sim._chunk += 1
            text = _MEDIA % (sim._seq, sim._chunk, (sim._chunk - 1) * 20, payload, sim.stream_sid)
            try:
                await ws.send(text)
            except Exception:  # noqa: BLE001 - a closed socket ends the stream; the reader records why
                return False
        self.record.frames_sent += 1
        if piece is not None:
            now = time.monotonic()
            utt = piece.utterance
            if utt is not None and piece.index == 0:
                # A frame leaves once its 20 ms were captured (as Twilio sends them): the caller started
                # talking one frame before the first voiced frame fell due (if this simulator sent it late,
                # the bot is not credited with that delay), and stopped as the last one went.
                due = self.next_frame_at - FRAME_S  # the clock has already moved on to the next frame
                utt.started_at = min(now, due) - FRAME_S
                utt.over_bot_audio = self.playout.playing
                self.record.utterances.append(utt)
            piece.index += 1
            if piece.index >= len(piece.payloads):
                if utt is not None:
                    utt.ended_at = now  # when the last voiced frame left: the caller stopped talking
                self._pieces.popleft()
                if not piece.done.done():
                    piece.done.set_result(None)
        return True

    async def say(self, speech: Speech) -> Utterance:
        """Streams ``speech`` in real time; returns its record once the last frame has been sent."""
        utt = Utterance(started_at=0.0)
        await self._queue(_Piece(speech.payloads, asyncio.get_running_loop().create_future(), utt))
        return utt

    async def pause(self, seconds: float) -> None:
        """Silence for ``seconds`` (the clock sends silence anyway; this waits for that many frames)."""
        frames = max(1, round(seconds / FRAME_S))
        await self._queue(_Piece([SILENT_PAYLOAD] * frames, asyncio.get_running_loop().create_future()))

    async def _queue(self, piece: _Piece) -> None:
        if self.closed:
            return
        self._pieces.append(piece)
        await piece.done

    async def until(self, predicate: Callable[[], bool], timeout_s: float, *, poll_s: float = 0.1) -> bool:
        """Waits until ``predicate()`` (checked on every message from the bot, and every ``poll_s``)."""
        deadline = time.monotonic() + timeout_s
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            changed = self.sim._changed  # set by the simulator on every message and every echo
            changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), min(poll_s, remaining))
        return True

    async def listen_to_end(self, quiet_s: float, timeout_s: float) -> bool:
        """Listens until the bot has finished talking: everything played, every mark echoed, then nothing new
        for ``quiet_s``. False on timeout or when the call ended."""
        deadline = time.monotonic() + timeout_s
        while not self.closed:
            idle = await self.until(
                lambda: self.closed or (not self.playout.playing and not self.playout.pending_marks),
                deadline - time.monotonic(),
            )
            if not idle or self.closed:
                return False
            seen = self.record.audio_messages
            await self.until(lambda: self.closed or self.record.audio_messages != seen, quiet_s)  # noqa: B023
            if self.record.audio_messages == seen:
                return not self.closed
        return False

    async def press(self, digit: str) -> float:
        """Sends a DTMF digit; returns when it was sent."""
        await self.sim.send_dtmf(digit)
        return time.monotonic()
