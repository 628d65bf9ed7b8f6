"""The processes a benchmark runs and watches: ``voicebot fakes`` and ``voicebot serve``, CPU placement, and
a sampler of their CPU time and memory from ``/proc``."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

STT_MS, LLM_MS, TTS_MS = 300, 350, 150
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_CLI = "import sys; from web.cli import main; sys.exit(main(prog_name='voicebot'))"


def _voicebot(*args: str) -> list[str]:
    return [sys.executable, "-c", _CLI, *args]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


@dataclass
class Sample:
    at: float
    server_cpu: float
    server_rss: float
    fakes_cpu: float
    sims_cpu: float
    busy: tuple[float, float]


@dataclass
class Sampler:
    """Samples the server, the fakes and the simulators every ``every_s`` in a thread."""

    server: int
    fakes: int
    sims: list[int] = field(default_factory=list)
    every_s: float = 0.5
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def sample(self) -> Sample:
        sims = 0.0
        for pid in self.sims:
            with contextlib.suppress(OSError, IndexError):
                sims += cpu_seconds(pid)
        return Sample(
            time.monotonic(),
            cpu_seconds(self.server),
            rss_mib(self.server),
            cpu_seconds(self.fakes),
            sims,
            machine_busy(),
        )

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            with contextlib.suppress(OSError):
                self.samples.append(self.sample())

    @contextlib.contextmanager
    def running(self) -> Iterator[Sampler]:
        thread = threading.Thread(target=self._loop, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()


@dataclass(frozen=True)
class Placement:
    """Which CPUs the server and the load (fakes, simulators) may run on; empty sets mean anywhere."""

    server: frozenset[int] = frozenset()
    load: frozenset[int] = frozenset()

    @classmethod
    def split(cls) -> Placement:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            return cls()
        return cls(frozenset(cpus[:1]), frozenset(cpus[1:]))

    def describe(self) -> str:
        if not self.server:
            return "server and load share all CPUs"
        return f"server on CPU {_cpus(self.server)}, fakes and simulators on CPU {_cpus(self.load)}"

    def pin_server(self, pid: int) -> None:
        if self.server:
            os.sched_setaffinity(pid, self.server)

    def pin_load(self, pid: int) -> None:
        if self.load:
            os.sched_setaffinity(pid, self.load)


def _cpus(cpus: frozenset[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))


@dataclass
class Services:
    base_url: str
    server: subprocess.Popen[bytes]
    fakes: subprocess.Popen[bytes]
    data_dir: Path
    placement: Placement = field(default_factory=Placement)


@contextlib.contextmanager
def services(
    max_calls: int,
    log_dir: Path,
    placement: Placement | None = None,
    *,
    env: Mapping[str, str] | None = None,
    fakes_args: Sequence[str] = (),
) -> Iterator[Services]:
    """``env`` overrides the server's settings; ``fakes_args`` adds to (or overrides) the fakes' options."""
    placement = placement or Placement()
    log_dir.mkdir(parents=True, exist_ok=True)
    fakes_port, bot_port = _free_port(), _free_port()
    data_dir = log_dir / "data"
    fakes_cmd = _voicebot(
        "fakes",
        "--port",
        str(fakes_port),
        "--stt-ms",
        str(STT_MS),
        "--llm-ms",
        str(LLM_MS),
        "--tts-ms",
        str(TTS_MS),
        "--log-level",
        "warning",
        *fakes_args,
    )
    fakes_url = f"http://127.0.0.1:{fakes_port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.isupper() or k in ("PATH", "HOME", "LANG", "TMPDIR")},
        "OPENAI_API_KEY": "sk-bench",
        "OPENAI_BASE_URL": f"{fakes_url}/v1",
        "ELEVENLABS_API_KEY": "el-bench",
        "ELEVENLABS_BASE_URL": fakes_url,
        "STT_PROVIDER": "openai",
        "LLM_PROVIDER": "openai",
        "TTS_PROVIDER": "elevenlabs",
        "PUBLIC_URL": f"http://127.0.0.1:{bot_port}",
        "MAX_CONCURRENT_CALLS": str(max(200, max_calls * 2)),
        "DATA_DIR": str(data_dir),
        "LOG_LEVEL": "warning",
        "LOG_FORMAT": "json",
        **(env or {}),
    }
    with (log_dir / "fakes.log").open("wb") as flog, (log_dir / "server.log").open("wb") as slog:
        fakes = subprocess.Popen(fakes_cmd, stdout=flog, stderr=subprocess.STDOUT, env=env)
        placement.pin_load(fakes.pid)
        server = subprocess.Popen(
            _voicebot("--env-file", str(log_dir / "no.env"), "serve", "--port", str(bot_port)),
            stdout=slog,
            stderr=subprocess.STDOUT,
            env=env,
        )
        placement.pin_server(server.pid)  # before it starts threads: they inherit the mask
        try:
            base = f"http://127.0.0.1:{bot_port}"
            _wait_ready(f"{fakes_url}/health", fakes)
            _wait_ready(f"{base}/ready", server)
            yield Services(base, server, fakes, data_dir, placement)
        finally:
            for proc in (server, fakes):
                proc.terminate()
            for proc in (server, fakes):
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} before {url} answered")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready within {timeout_s} s")
