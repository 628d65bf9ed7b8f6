"""Debian's redis-server, PostgreSQL and nginx, started on loopback with throwaway data directories.

Redis and PostgreSQL are started once per test session by a fixture and stopped after the run. Readiness is
the server's own log line ("Ready to accept connections", "database system is ready to accept connections",
nginx's "start worker processes", each written once its port is bound), read by a thread and awaited as an
event, never by polling or sleeping. ``free_port`` can race with another process taking the port before the
server binds it: a server that reports the port in use is started again on another one. A package that is
not installed skips its tests with the reason; ``scripts/test`` installs them on a bare machine.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

import pytest

START_TIMEOUT_S = 30.0
"""Bounds only a server that never comes up: a ready server wakes the waiter at once."""
PORT_ATTEMPTS = 5
IN_USE = "address already in use"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class LogWatch:
    """Reads a server's log stream to its end in a daemon thread (so the pipe never fills and blocks the
    server); ``done`` is set at the first line holding ``ready``, or at the end of the stream."""

    def __init__(self, stream: IO[bytes], ready: str) -> None:
        self.ready = ready
        self.found = False
        self.done = threading.Event()
        self.tail: deque[str] = deque(maxlen=40)
        self._thread = threading.Thread(target=self._read, args=(stream,), name="server-log", daemon=True)
        self._thread.start()

    def _read(self, stream: IO[bytes]) -> None:
        with stream:
            for raw in iter(stream.readline, b""):
                line = raw.decode(errors="replace").rstrip()
                self.tail.append(line)
                if not self.found and self.ready in line:
                    self.found = True
                    self.done.set()
        self.done.set()

    def wait(self, timeout_s: float) -> bool:
        self.done.wait(timeout_s)
        return self.found

    def port_taken(self) -> bool:
        return any(IN_USE in line.lower() for line in self.tail)

    def join(self) -> None:
        """After the process ended: its last lines are in ``tail``."""
        self._thread.join(timeout=10)


def start_logged(
    what: str,
    command: Callable[[int], list[str]],
    ready: str,
    *,
    stream: Literal["stdout", "stderr"] = "stderr",
) -> tuple[subprocess.Popen[bytes], int, LogWatch]:
    """Starts ``command(port)`` on a free port and returns once the server logged ``ready``. The server's
    log goes to ``stream`` (stdout or stderr); the other one is discarded."""
    for _ in range(PORT_ATTEMPTS):
        port = free_port()
        proc = subprocess.Popen(
            command(port),
            stdout=subprocess.PIPE if stream == "stdout" else subprocess.DEVNULL,
            stderr=subprocess.PIPE if stream == "stderr" else subprocess.DEVNULL,
        )
        out = proc.stdout if stream == "stdout" else proc.stderr
        assert out is not None
        watch = LogWatch(out, ready)
        if watch.wait(START_TIMEOUT_S):
            return proc, port, watch
        stop_process(proc)
        watch.join()
        if not watch.port_taken():
            log = "\n".join(watch.tail)
            raise RuntimeError(f"{what} ended or stayed silent (exit code {proc.returncode}):\n{log}")
    raise RuntimeError(f"{what}: {PORT_ATTEMPTS} free ports were taken before it could bind them")


def stop_process(proc: subprocess.Popen[bytes], timeout_s: float = 20.0) -> None:
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass(frozen=True, slots=True)
class RedisServer:
    url: str
    port: int
    proc: subprocess.Popen[bytes]

    def stop(self) -> None:
        stop_process(self.proc, timeout_s=10)


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server; scripts/test does)")
    data = tempfile.mkdtemp(prefix="voicebot-redis-")

    def command(port: int) -> list[str]:
        return [
            binary,
            *("--port", str(port), "--bind", "127.0.0.1", "--dir", data),
            *("--save", "", "--appendonly", "no", "--loglevel", "notice", "--logfile", ""),
        ]

    try:
        proc, port, _log = start_logged(
            "redis-server", command, "Ready to accept connections", stream="stdout"
        )
        try:
            yield RedisServer(f"redis://127.0.0.1:{port}/0", port, proc)
        finally:
            stop_process(proc, timeout_s=10)
    finally:
        shutil.rmtree(data, ignore_errors=True)


@dataclass(frozen=True, slots=True)
class PostgresServer:
    port: int

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://voicebot@127.0.0.1:{self.port}/{database}"


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Root may not run PostgreSQL: as root the server runs as Debian's ``postgres`` user."""
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql; scripts/test does)")
    data = Path(tempfile.mkdtemp(prefix="voicebot-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(data, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    initdb = [str(bin_dir / "initdb"), "-D", str(data / "db"), "-U", "voicebot", "-A", "trust", "-E", "UTF8"]
    subprocess.run([*run_as, *initdb], check=True, capture_output=True)

    def command(port: int) -> list[str]:
        options = [
            "listen_addresses=127.0.0.1",
            f"port={port}",
            f"unix_socket_directories={data}",
            "fsync=off",
            "lc_messages=C",  # the ready line is matched in English
        ]
        return [
            *run_as,
            str(bin_dir / "postgres"),
            "-D",
            str(data / "db"),
            *(a for o in options for a in ("-c", o)),
        ]

    try:
        proc, port, _log = start_logged("postgres", command, "database system is ready to accept connections")
        try:
            yield PostgresServer(port)
        finally:
            stop_process(proc)
    finally:
        shutil.rmtree(data, ignore_errors=True)


def create_database(server: PostgresServer, name: str) -> str:
    """A fresh database per test: the server is shared, the data is not."""
    bin_dir = _pg_bin()
    assert bin_dir is not None
    subprocess.run(
        [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(server.port), "-U", "voicebot", name],
        check=True,
        capture_output=True,
    )
    return server.url(name)


NGINX_CONF = """
worker_processes 1;
pid {root}/nginx.pid;
error_log stderr notice;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
{upstreams}
    server {{
        listen 127.0.0.1:{port};
{locations}
    }}
}}
"""

LOCATION = """
        location {path} {{
            proxy_pass http://{upstream};
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_read_timeout 3600s;
            proxy_buffering off;
        }}
"""


@contextlib.contextmanager
def nginx_proxy(routes: dict[str, list[int]]) -> Iterator[int]:
    """nginx on a free loopback port; ``routes`` maps a path prefix to the backend ports behind it."""
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if binary is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light; scripts/test does)")
    root = Path(tempfile.mkdtemp(prefix="voicebot-nginx-"))
    root.chmod(0o755)  # the worker process runs as an unprivileged user
    upstreams, locations = [], []
    for n, (path, ports) in enumerate(routes.items()):
        servers = "".join(f" server 127.0.0.1:{p};" for p in ports)
        upstreams.append(f"    upstream backend{n} {{{servers} }}")
        locations.append(LOCATION.format(path=path, upstream=f"backend{n}"))

    def command(port: int) -> list[str]:
        conf = root / f"nginx-{port}.conf"
        conf.write_text(
            NGINX_CONF.format(
                root=root, port=port, upstreams="\n".join(upstreams), locations="".join(locations)
            )
        )
        return [binary, "-p", str(root), "-e", "stderr", "-c", str(conf), "-g", "daemon off;"]

    try:
        # Logged once the socket is bound, before the workers start: connections wait in its backlog.
        proc, port, _log = start_logged("nginx", command, "start worker processes")
        try:
            yield port
        finally:
            stop_process(proc, timeout_s=10)
    finally:
        shutil.rmtree(root, ignore_errors=True)
