"""The console's event hub: calls publish without waiting, every watching browser gets a bounded backlog.

Events travel through Litestar's channels plugin (one channel, memory backend in one process, Redis when
several bot instances share a console). Each instance folds what arrives into its ``LiveCalls`` view-model
and wakes its local watchers (one per open SSE stream). A watcher keeps only its newest updates: pages are
re-rendered from the view-model, so a browser that misses old updates still converges on the current state,
and no browser can make a call wait.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Iterator
from typing import Final

import structlog
from litestar.channels import ChannelsPlugin

from console.live_calls import LiveCalls
from console.wire import decode_event, encode_event
from dialogue.events import CallEvent

CHANNEL: Final = "voicebot.call-events"
PUBLISH_EVERY_S: Final = 0.02
"""Events of all calls go out together, one message per 20 ms at most: with Redis every message is a
round trip and a system call (at 120 calls, one per event cost the bot a twentieth of its core), and a
person watching the console does not see 20 ms."""
WATCHER_BACKLOG: Final = 64
"""Updates one browser may lag behind before its oldest are dropped (each re-render is complete anyway)."""

log = structlog.get_logger()


class Watcher:
    """One open SSE stream's queue: bounded, oldest dropped, never awaited by the publisher."""

    def __init__(self, call_sid: str | None, backlog: int = WATCHER_BACKLOG) -> None:
        self.call_sid = call_sid
        self._queue: deque[CallEvent] = deque(maxlen=backlog)
        self._wake = asyncio.Event()
        self.dropped = 0

    def wants(self, event: CallEvent) -> bool:
        return self.call_sid is None or self.call_sid == event.call_sid

    def push(self, event: CallEvent) -> None:
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
        self._queue.append(event)
        self._wake.set()

    async def next_batch(self, wait_s: float | None = None) -> list[CallEvent]:
        """Everything queued so far (at least one event), or [] when ``wait_s`` passes first."""
        if not self._queue:
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait_s)
        batch = list(self._queue)
        self._queue.clear()
        return batch


class EventHub:
    """The ``EventSink`` the console adds to the app's fan-out."""

    def __init__(self, channels: ChannelsPlugin, live: LiveCalls | None = None) -> None:
        self._channels = channels
        self.live = live or LiveCalls()
        self._watchers: set[Watcher] = set()
        self._task: asyncio.Task[None] | None = None
        self._pending: list[bytes] = []
        self._flush_at: asyncio.TimerHandle | None = None
        self.dropped = 0

    def publish(self, event: CallEvent) -> None:
        """Called by the call session: encodes and queues, never waits; ``flush`` sends the batch."""
        self._pending.append(encode_event(event))
        if self._flush_at is None:
            self._flush_at = asyncio.get_running_loop().call_later(PUBLISH_EVERY_S, self.flush)

    def flush(self) -> None:
        """One channel message for everything pending: encoded events, one per line (JSON has no raw
        newline). Instances of an older version would not read such a message: upgrade a fleet at once."""
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush_at = None
        batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            self._channels.publish(b"\n".join(batch), CHANNEL)
        except RuntimeError:  # channels not started (app shutting down): the console may miss these
            self.dropped += len(batch)

    def deliver(self, event: CallEvent) -> None:
        """Folds one event from the channel into the view-model and wakes the watchers that want it."""
        if self.live.apply(event) is None:
            return  # an erased call: nobody may see it again
        for watcher in self._watchers:
            if watcher.wants(event):
                watcher.push(event)

    @contextlib.contextmanager
    def watch(self, call_sid: str | None = None) -> Iterator[Watcher]:
        watcher = Watcher(call_sid)
        self._watchers.add(watcher)
        try:
            yield watcher
        finally:
            self._watchers.discard(watcher)

    @property
    def watcher_count(self) -> int:
        return len(self._watchers)

    async def start(self) -> None:
        """Subscribes before returning, so no event published after start-up is missed."""
        subscriber = await self._channels.subscribe(CHANNEL)
        self._task = asyncio.create_task(self._consume(subscriber.iter_events()), name="console-hub")
        self._subscriber = subscriber

    async def stop(self) -> None:
        self.flush()
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        with contextlib.suppress(Exception):
            await self._channels.unsubscribe(self._subscriber, CHANNEL)

    async def _consume(self, payloads: AsyncIterator[bytes]) -> None:
        async for payload in payloads:
            for line in payload.split(b"\n"):
                event = decode_event(line)
                if event is None:
                    log.warning("console_event_undecodable", size=len(line))
                    continue
                try:
                    self.deliver(event)
                except Exception:  # one bad event must not stop the console's feed
                    log.exception("console_event_failed", kind=event.kind)
