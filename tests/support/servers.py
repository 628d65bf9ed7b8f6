"""Debian's redis-server and PostgreSQL, started on loopback with throwaway data directories.

Each is started once per test session by a fixture and stopped after the run. Readiness is awaited by
asking the server itself (``redis-cli ping``, ``pg_isready``), never by sleeping a fixed time. A package
that is not installed skips its tests with the reason; ``scripts/test`` installs both on a bare machine.
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
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

START_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_until(check: list[str], what: str, proc: subprocess.Popen[bytes]) -> None:
    """Polls the server's own readiness probe; the deadline only bounds a server that never comes up."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before it was ready")
        if subprocess.run(check, capture_output=True, check=False).returncode == 0:
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} was not ready within {START_TIMEOUT_S} s")


@dataclass(frozen=True, slots=True)
class RedisServer:
    url: str
    port: int
    proc: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server; scripts/test does)")
    port = free_port()
    data = tempfile.mkdtemp(prefix="voicebot-redis-")
    args = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        data,
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_until(["redis-cli", "-p", str(port), "ping"], "redis-server", proc)
        yield RedisServer(f"redis://127.0.0.1:{port}/0", port, proc)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)
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
    port = free_port()
    data = Path(tempfile.mkdtemp(prefix="voicebot-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(data, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [
            *run_as,
            str(bin_dir / "initdb"),
            "-D",
            str(data / "db"),
            "-U",
            "voicebot",
            "-A",
            "trust",
            "-E",
            "UTF8",
        ],
        check=True,
        capture_output=True,
    )
    options = ["listen_addresses=127.0.0.1", f"port={port}", f"unix_socket_directories={data}", "fsync=off"]
    proc = subprocess.Popen(
        [
            *run_as,
            str(bin_dir / "postgres"),
            "-D",
            str(data / "db"),
            *(a for o in options for a in ("-c", o)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_until(
            [str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-U", "voicebot"],
            "postgres",
            proc,
        )
        yield PostgresServer(port)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
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
error_log {root}/error.log warn;
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
    port = free_port()
    upstreams, locations = [], []
    for n, (path, ports) in enumerate(routes.items()):
        servers = "".join(f" server 127.0.0.1:{p};" for p in ports)
        upstreams.append(f"    upstream backend{n} {{{servers} }}")
        locations.append(LOCATION.format(path=path, upstream=f"backend{n}"))
    conf = root / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(root=root, port=port, upstreams="\n".join(upstreams), locations="".join(locations))
    )
    proc = subprocess.Popen(
        [binary, "-p", str(root), "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:  # nginx has no readiness probe of its own: its port accepting is the signal
            if proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {proc.stderr.read().decode() if proc.stderr else ''}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("nginx did not listen in time")
            time.sleep(0.02)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()
        shutil.rmtree(root, ignore_errors=True)
