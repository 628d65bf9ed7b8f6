"""How one call ends: the reason that is reported, and the shutdown that waits for everything it owned.

A hang-up from any state goes through the spine (``hangup``), whose effect must not await: it stops the
bot's work, cancels every task of the call at once and leaves the waiting to a shutdown task of its own,
which closes the voice and the transcriber, reports the call's end and closes the transport. Until that
task is done the call still counts as running (``active``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

import structlog

from dialogue.events import CallEnded, CallEvent
from dialogue.jobs import Jobs
from dialogue.machine import CallMachine, Trigger
from dialogue.preempt import Preemption
from dialogue.streamed_turns import StreamedTurns
from dialogue.tasks import CallTasks
from dialogue.timers import CallTimers
from dialogue.voice import BotVoice
from media.transport import CallTransport


class EndHost(Protocol):
    call_sid: str
    stream_sid: str
    machine: CallMachine
    voice: BotVoice
    stream: StreamedTurns | None
    preemption: Preemption
    jobs: Jobs
    timers: CallTimers

    def fire(self, trigger: Trigger, *, gen: int | None = None, **data: Any) -> bool: ...

    def emit(self, event: CallEvent) -> None: ...


class CallEnd:
    def __init__(self, host: EndHost, *, tasks: CallTasks, transport: CallTransport) -> None:
        self._host = host
        self._tasks = tasks
        self._transport = transport
        self.ended = False
        self.reason = ""
        self._shutdown: asyncio.Task[None] | None = None
        self._started = time.monotonic()
        self._log = structlog.get_logger().bind(call_sid=host.call_sid, stream_sid=host.stream_sid)

    def note(self, reason: str) -> None:
        """The first reason wins (the bot's own goodbye closes the stream, which reports ``bot_closed``
        after); an empty one takes it back (a transfer that failed)."""
        self.reason = (self.reason or reason) if reason else ""

    @property
    def active(self) -> int:
        """Tasks of the call still running, shutdown included: zero means the call left nothing behind."""
        return self._tasks.active + (1 if self._shutdown is not None and not self._shutdown.done() else 0)

    async def hangup(self, reason: str) -> None:
        self.note(reason)
        if not self.ended:
            self._host.fire(Trigger.HANGUP)
        if self._shutdown is not None:
            await asyncio.shield(self._shutdown)

    def shut_down(self) -> None:
        """The spine's ``end_call`` effect: only cancels, and starts the task that waits for the rest."""
        self.ended = True
        self._host.jobs.cancel()
        self._host.timers.disarm_reprompt()
        cancelled = self._tasks.cancel_all()
        self._host.voice.speaker.cancel_all()
        self._shutdown = asyncio.get_running_loop().create_task(self._finish(cancelled))

    async def _finish(self, cancelled: list[asyncio.Task[Any]]) -> None:
        if cancelled:
            await asyncio.gather(*cancelled, return_exceptions=True)
        host = self._host
        host.voice.close()
        if host.stream is not None:
            await host.stream.close()
        duration = time.monotonic() - self._started
        self._log.info(
            "call_ended",
            reason=self.reason,
            duration_s=round(duration, 1),
            invalid_triggers=host.machine.invalid_triggers,
            stale_triggers=host.machine.stale_triggers,
            preemptive_used=host.preemption.used,
            preemptive_dropped=host.preemption.dropped,
        )
        host.emit(CallEnded(call_sid=host.call_sid, reason=self.reason, duration_s=round(duration, 2)))
        try:
            await self._transport.close()
        except Exception as exc:  # noqa: BLE001 - the peer may already be gone; the call is over either way
            self._log.debug("transport_close_failed", error=repr(exc))
