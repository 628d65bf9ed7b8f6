"""The tasks one call owns: every piece of a call's work is one of these, so hanging up can cancel them all.

A task that fails is logged and reported, never silently dropped; ``active`` lets tests prove a finished
call left nothing running.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import structlog


class CallTasks:
    def __init__(self, prefix: str, *, on_failure: Callable[[str, BaseException], None]) -> None:
        self._prefix = prefix
        self._tasks: set[asyncio.Task[Any]] = set()
        self._on_failure = on_failure
        self._log = structlog.get_logger()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=f"{self._prefix}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    @property
    def active(self) -> int:
        return sum(1 for t in self._tasks if not t.done())

    def cancel_all(self) -> list[asyncio.Task[Any]]:
        """Cancels every task but the caller's own; returns them, to be awaited."""
        current = asyncio.current_task()
        cancelled = [t for t in self._tasks if t is not current]
        for task in cancelled:
            task.cancel()
        return cancelled

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self._log.error("task_failed", task=task.get_name(), error=repr(exc))
            self._on_failure(task.get_name(), exc)
