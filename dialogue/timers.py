"""The call's clocks: the silence before a reprompt, and the call's maximum duration.

Both end in a job that takes over (a reprompt, a goodbye). The reprompt timer is armed and disarmed by
the machine's effects; when it fires it looks at both machines once more, because a caller who started to
talk, or a bot that started to speak, means this silence is over (a later transition arms the next one).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

import structlog

from dialogue.config import SessionConfig
from dialogue.jobs import Jobs, JobWork
from dialogue.lines import ScriptedLines
from dialogue.machine import CallMachine, Floor, Work


class TimerHost(Protocol):
    machine: CallMachine
    closing: bool

    @property
    def ended(self) -> bool: ...

    def take_over(self, work: JobWork, name: str) -> None: ...


class CallTimers:
    def __init__(
        self,
        host: TimerHost,
        *,
        config: SessionConfig,
        jobs: Jobs,
        lines: ScriptedLines,
        spawn: Callable[[Coroutine[Any, Any, None], str], asyncio.Task[Any]],
    ) -> None:
        self._host = host
        self._config = config
        self._jobs = jobs
        self._lines = lines
        self._spawn = spawn
        self._reprompt: asyncio.Task[Any] | None = None
        self._log = structlog.get_logger()

    def start(self) -> None:
        self._spawn(self._watchdog(), "watchdog")

    def arm_reprompt(self) -> None:
        self.disarm_reprompt()
        if not self._host.closing and not self._host.ended:
            self._reprompt = self._spawn(self._reprompt_after_silence(), "reprompt")

    def disarm_reprompt(self) -> None:
        if self._reprompt is not None and self._reprompt is not asyncio.current_task():
            self._reprompt.cancel()
        self._reprompt = None

    async def _reprompt_after_silence(self) -> None:
        await asyncio.sleep(self._config.reprompt_after_s)
        self._reprompt = None
        machine = self._host.machine
        if machine.work is not Work.LISTENING or machine.floor is not Floor.BOT:
            return
        self._jobs.reprompts += 1
        n = self._jobs.reprompts
        if n > self._config.max_reprompts:
            self._host.take_over(lambda job: self._lines.goodbye(job, "caller_silent"), "goodbye")
        else:
            text = self._lines.reprompt_text(n)
            self._host.take_over(lambda job: self._lines.say(job, text, f"reprompt{n}"), "reprompt")

    async def _watchdog(self) -> None:
        await asyncio.sleep(self._config.max_call_duration_s)
        self._log.info("max_call_duration_reached", seconds=self._config.max_call_duration_s)
        self._host.take_over(lambda job: self._lines.goodbye(job, "max_duration"), "goodbye")
