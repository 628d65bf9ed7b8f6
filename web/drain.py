"""Graceful drain on SIGTERM: refuse new calls, let running ones finish, then say goodbye and exit.

A rolling restart of one instance of a fleet must not cut anyone off: the proxy sees ``/ready`` answer 503
and sends new calls elsewhere, Twilio calls that still arrive here hear the polite busy TwiML, and callers
already talking keep their call up to ``DRAIN_TIMEOUT_S``. Whoever is still on the line then hears the
German goodbye before the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import structlog

from dialogue.session import CallSession
from media.transport import StreamHandler
from web.context import AppContext

log = structlog.get_logger()

GOODBYE_GRACE_S = 15.0
"""How long the goodbyes themselves may take (a sentence, then the hang-up) before the process exits."""


@dataclass(slots=True)
class Drain:
    timeout_s: float
    live: Callable[[], list[StreamHandler]]
    """The sessions of this instance's live calls."""
    draining: bool = False
    drained: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    EXTRAS_KEY: ClassVar[str] = "drain"

    def begin(self, on_drained: Callable[[], None]) -> None:
        """Idempotent; ``on_drained`` is called once every call has ended (tells the server to exit)."""
        if self._task is not None:
            return
        self.draining = True
        log.info("drain_started", live_calls=len(self.live()), timeout_s=self.timeout_s)
        self._task = asyncio.get_running_loop().create_task(self._run(on_drained), name="drain")

    async def _run(self, on_drained: Callable[[], None]) -> None:
        try:
            await self._wait_for_calls(self.timeout_s)
            remaining = self.live()
            if remaining:
                log.info("drain_goodbye", live_calls=len(remaining))
                for handler in remaining:
                    say_goodbye(handler)
                await self._wait_for_calls(GOODBYE_GRACE_S)
            left = len(self.live())
            if left:
                log.warning("drain_calls_left", live_calls=left)
                for handler in self.live():
                    with contextlib.suppress(Exception):
                        await handler.on_stop("drained")
        finally:
            log.info("drain_done")
            self.drained.set()
            on_drained()

    async def _wait_for_calls(self, timeout_s: float) -> None:
        """Event-driven: ``call_ended`` wakes it (``notify``); the timeout is the operator's drain budget."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.live():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    def notify(self) -> None:
        """A call of this instance ended."""
        self._changed.set()


def say_goodbye(handler: StreamHandler) -> None:
    """The session's own goodbye (the German closing line, then the hang-up through call control), taking
    over whatever the bot was doing, as the maximum-duration watchdog does; any other handler just ends."""
    if isinstance(handler, CallSession):
        lines = handler.lines
        handler.take_over(lambda job: lines.goodbye(job, "drained"), "goodbye")
        return
    asyncio.get_running_loop().create_task(handler.on_stop("drained"), name="drain-stop")


def draining(ctx: AppContext) -> bool:
    drain = ctx.extras.get(Drain.EXTRAS_KEY)
    return isinstance(drain, Drain) and drain.draining


def drain_of(ctx: AppContext) -> Drain | None:
    drain = ctx.extras.get(Drain.EXTRAS_KEY)
    return drain if isinstance(drain, Drain) else None
