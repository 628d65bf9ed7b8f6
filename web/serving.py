"""Running the bot: one uvicorn server that drains on SIGTERM, and ``--workers N`` processes on one port.

Uvicorn's own SIGTERM handling stops accepting connections and closes every WebSocket with 1012 at once,
which would cut off every caller of the instance. ``DrainingServer`` instead keeps serving while the app
drains (``web.drain``): ``/voice`` answers busy, ``/ready`` 503, calls finish or hear a goodbye, and only
then does uvicorn shut down, so the process exits 0. A second signal stops at once.

``--workers N`` starts N such processes, each bound to the same port with ``SO_REUSEPORT`` so the kernel
spreads connections across them; a call's ``/voice`` and ``/media`` may land on different workers, which
is why N > 1 needs ``REDIS_URL``. The parent forwards SIGTERM and SIGINT and exits 0 when every worker did.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn

from web.drain import Drain
from web.media_protocol import MediaSocketProtocol


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, drain: Drain | None) -> None:
        super().__init__(config)
        self._drain = drain
        self._draining = False
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig != signal.SIGTERM or self._drain is None or self._loop is None or self._draining:
            super().handle_exit(sig, frame)
            return
        self._draining = True  # not re-raised after shutdown: a drained process exits 0
        self._loop.call_soon_threadsafe(self._drain.begin, self._drained)

    def _drained(self) -> None:
        self.should_exit = True


def reuse_port_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def run_server(app: Any, host: str, port: int, *, reuse_port: bool) -> None:
    drain = app.state.ctx.extras.get(Drain.EXTRAS_KEY)
    # μ-law does not compress: permessage-deflate would only burn CPU on every 20 ms frame.
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        ws=MediaSocketProtocol,  # Twilio's frames straight to the call: web/media_protocol.py
        ws_max_size=1 << 20,
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=10,
    )
    server = DrainingServer(config, drain if isinstance(drain, Drain) else None)
    server.run(sockets=[reuse_port_socket(host, port)] if reuse_port else None)
    if not server.started:
        sys.exit(3)


def run_workers(workers: int, env_file: Path, host: str, port: int) -> int:
    """Starts ``workers`` copies of ``voicebot serve --reuse-port``; returns 0 only if all exited 0."""
    command = [sys.executable, "-c", "from web.cli import main; main()", "--env-file", str(env_file)]
    command += ["serve", "--reuse-port", "--host", host, "--port", str(port)]
    children = [subprocess.Popen(command) for _ in range(workers)]  # noqa: S603 - our own interpreter

    def forward(sig: int, _frame: FrameType | None) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(sig)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    codes = [child.wait() for child in children]
    return 0 if all(code == 0 for code in codes) else 1
