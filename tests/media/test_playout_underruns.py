"""Underruns seen by the playout on its own clock: a stutter inside a reply, never a pause between replies
or a pause the bot makes on purpose."""

from __future__ import annotations

import asyncio
import contextlib

from media.playout import Playout

CHUNK = b"\x7f" * 800  # 100 ms of μ-law silence


class Wire:
    """A transport that records what went out and lets the test await each message."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self._changed = asyncio.Condition()

    async def send_audio(self, ulaw: bytes) -> None:
        await self._add(f"audio:{len(ulaw)}")

    async def send_mark(self, name: str) -> None:
        await self._add(f"mark:{name}")

    async def clear(self) -> None:
        await self._add("clear")

    async def close(self) -> None:
        return None

    async def _add(self, what: str) -> None:
        async with self._changed:
            self.sent.append(what)
            self._changed.notify_all()

    async def wait_for(self, count: int) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(self.sent) >= count), 5)


async def test_only_gaps_inside_a_reply_are_underruns() -> None:
    now = [0.0]
    wire = Wire()
    dry: list[float] = []
    out = Playout(wire, lead_ms=200, chunk_ms=100, on_underrun=dry.append, clock=lambda: now[0])
    feed = asyncio.create_task(out.run())
    try:
        out.enqueue_audio(CHUNK)  # t1's first sentence; the far end plays it until 0.1
        await wire.wait_for(1)
        now[0] = 0.5
        out.enqueue_audio(CHUNK)  # same sentence, 400 ms late: a stutter
        out.enqueue_mark("t1-1")
        await wire.wait_for(3)
        assert out.underruns == 1
        assert round(dry[0], 3) == 0.4
        now[0] = 1.0
        out.enqueue_audio(CHUNK)  # t1's next sentence came 400 ms after the last one ended: a stutter too
        out.enqueue_mark("t1-2")
        await wire.wait_for(5)
        assert out.underruns == 2
        now[0] = 3.0
        out.enqueue_audio(CHUNK)  # the next reply after a pause: a turn, not a stutter
        out.enqueue_mark("t2-3")
        await wire.wait_for(7)
        out.enqueue_audio(CHUNK)
        await wire.wait_for(8)
        out.pause()  # the bot holds its voice for a possible barge-in
        out.enqueue_audio(CHUNK)
        now[0] = 4.0
        out.resume()
        await wire.wait_for(9)
        assert out.underruns == 2
        now[0] = 5.0
        out.enqueue_audio(CHUNK)  # and once it speaks on without holding, a gap is a stutter again
        await wire.wait_for(10)
        assert out.underruns == 3
        assert len(dry) == 3
    finally:
        feed.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feed
