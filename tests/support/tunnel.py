"""A stand-in for an ngrok tunnel: a loopback TCP forwarder with its own address, that a test can cut.

The bot sees requests arrive through another host:port than its own, as behind a real tunnel; ``target``
may be set after the forwarder starts (the bot's port is known only once it listens), and ``cut()`` makes
it refuse new connections, as a tunnel that died.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass(slots=True)
class StandInTunnel:
    url: str = ""
    target_port: int = 0
    _server: asyncio.Server | None = None
    _pipes: set[asyncio.Task[None]] = field(default_factory=set)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        tasks = {
            asyncio.create_task(_pipe(reader, up_writer)),
            asyncio.create_task(_pipe(up_reader, writer)),
        }
        self._pipes |= tasks
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pipes -= tasks

    async def cut(self) -> None:
        """New connections are refused from now on (running ones are left alone, like a dying tunnel)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


@asynccontextmanager
async def stand_in_tunnel(target_port: int = 0) -> AsyncIterator[StandInTunnel]:
    tunnel = StandInTunnel(target_port=target_port)
    tunnel._server = await asyncio.start_server(tunnel._handle, "127.0.0.1", 0)
    port = tunnel._server.sockets[0].getsockname()[1]
    tunnel.url = f"http://127.0.0.1:{port}"
    try:
        yield tunnel
    finally:
        for task in list(tunnel._pipes):
            task.cancel()
        await asyncio.gather(*tunnel._pipes, return_exceptions=True)
        await tunnel.cut()
