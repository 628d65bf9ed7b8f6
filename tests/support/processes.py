"""``voicebot serve`` as a real process, its JSON log read line by line, for fleet tests.

Waiting is on the process's own log lines (an ``asyncio.Condition`` woken per line), never on a sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from tests.support.servers import free_port

START_TIMEOUT_S = 60.0


class BotProcess:
    def __init__(
        self, name: str, env: Mapping[str, str], *, workers: int = 1, port: int | None = None
    ) -> None:
        self.name = name
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._env = {**os.environ, **env, "PORT": str(self.port), "LOG_FORMAT": "json", "HOST": "127.0.0.1"}
        self._workers = workers
        self.proc: asyncio.subprocess.Process | None = None
        self.lines: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._changed = asyncio.Condition()
        self._reader: asyncio.Task[None] | None = None
        self.eof = False

    async def start(self) -> None:
        command = [sys.executable, "-c", "from web.cli import main; main()", "--env-file", "/nonexistent"]
        command += ["serve", "--workers", str(self._workers)]
        self.proc = await asyncio.create_subprocess_exec(
            *command, env=self._env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        self._reader = asyncio.create_task(self._read(), name=f"log-{self.name}")

    async def _read(self) -> None:
        assert self.proc is not None
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            text = raw.decode(errors="replace").strip()
            self.raw.append(text)
            with contextlib.suppress(ValueError):
                line = json.loads(text)
                if isinstance(line, dict):
                    self.lines.append(line)
            async with self._changed:
                self._changed.notify_all()
        self.eof = True
        async with self._changed:
            self._changed.notify_all()

    def logged(self, event: str, **fields: Any) -> list[dict[str, Any]]:
        return [
            line
            for line in self.lines
            if line.get("event") == event and all(line.get(k) == v for k, v in fields.items())
        ]

    async def wait_log(self, event: str, *, count: int = 1, timeout_s: float = 30.0, **fields: Any) -> None:
        await self._wait(lambda: len(self.logged(event, **fields)) >= count, timeout_s, event)

    async def _wait(self, done: Callable[[], bool], timeout_s: float, what: str) -> None:
        async def until() -> None:
            async with self._changed:
                while not done():
                    if self.eof:
                        raise AssertionError(f"{self.name} exited before {what}: {self.raw[-20:]}")
                    await self._changed.wait()

        try:
            await asyncio.wait_for(until(), timeout_s)
        except TimeoutError:
            raise AssertionError(
                f"{self.name}: no {what} within {timeout_s} s; log tail {self.raw[-20:]}"
            ) from None

    async def wait_ready(self) -> None:
        """The store and fleet start in the lifespan; ``/health`` answering means uvicorn is serving."""
        await self.wait_log("call_store_started", count=self._workers, timeout_s=START_TIMEOUT_S)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_S  # only a server that never binds; a loaded one may be slow
        async with httpx.AsyncClient() as client:
            while loop.time() < deadline:
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(self.base_url + "/health")).status_code == 200:
                        return
                await asyncio.sleep(0.05)
        raise AssertionError(f"{self.name} never answered /health")

    def signal(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def wait_exit(self, timeout_s: float = 60.0) -> int:
        assert self.proc is not None
        code = await asyncio.wait_for(self.proc.wait(), timeout_s)
        if self._reader is not None:
            await self._reader
        return code

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await self._reader
