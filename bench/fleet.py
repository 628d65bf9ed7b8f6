"""A fleet on one machine: ``voicebot serve`` with 1 and with 2 workers on Redis and PostgreSQL, under
simulated Twilio load, for the barge-in mix and the talk-heavy mix.

Run from the repository root: ``python -m bench.fleet`` (``--calls 200 --seconds 30``; ``--calls 2
--seconds 6`` is a smoke run). It starts Debian's redis-server and PostgreSQL on loopback with throwaway
directories (as ``tests/support/servers.py`` does), ``voicebot fakes`` with the provider latencies of
``bench.run``, and for each row ``voicebot serve --workers W`` with ``REDIS_URL`` and ``DATABASE_URL``,
driven by ``voicebot simulate`` with ``calls × W`` concurrent calls. Printed per row: voice-to-voice p50/p95,
barge-in p95, the server processes' CPU per call (all workers), underruns, failed calls, and Redis commands
and PostgreSQL transactions per call (from ``INFO commandstats`` and ``pg_stat_database``). Nothing is
asserted; run it on a quiet machine, the table names the CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import redis

from bench.processes import (
    LLM_MS,
    STT_MS,
    TTS_MS,
    Placement,
    _free_port,
    _voicebot,
    _wait_ready,
    cpu_seconds,
)
from bench.run import machine
from bench.server_log import count_trouble, log_size
from simulator.report import percentile
from tests.support.servers import PostgresServer, create_database, postgres_server, redis_server

MIXES = {"bargein": "barge-in mix", "turns": "talk-heavy mix"}


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _cpu(pids: Sequence[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError):
            total += cpu_seconds(pid)
    return total


def _redis_commands(url: str) -> int:
    client = redis.Redis.from_url(url)
    try:
        stats: dict[str, Any] = client.info("commandstats")
        return sum(int(v["calls"]) for k, v in stats.items() if k not in ("cmdstat_info",))
    finally:
        client.close()


def _pg_transactions(server: PostgresServer, database: str) -> int:
    bin_dir = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
    sql = f"SELECT xact_commit FROM pg_stat_database WHERE datname = '{database}'"  # noqa: S608 - our name
    psql = [str(bin_dir / "psql"), "-h", "127.0.0.1", "-p", str(server.port), "-U", "voicebot"]
    out = subprocess.run(
        [*psql, "-d", "postgres", "-tAc", sql],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout.strip() or 0)


@contextlib.contextmanager
def _fakes(env: dict[str, str]) -> Iterator[tuple[str, int]]:
    port = _free_port()
    cmd = _voicebot("fakes", "--port", str(port), "--stt-ms", str(STT_MS), "--llm-ms", str(LLM_MS))
    cmd += ["--tts-ms", str(TTS_MS), "--log-level", "warning"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        _wait_ready(f"http://127.0.0.1:{port}/health", proc)
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        proc.wait(10)


def _sleep_until(t: float) -> None:
    time.sleep(max(0.0, t - time.monotonic()))


def run_row(
    workers: int,
    mix: str,
    calls: int,
    seconds: float,
    ramp: float,
    base_env: dict[str, str],
    work: Path,
    pg: PostgresServer,
    placement: Placement,
    fakes_pid: int,
) -> dict[str, Any]:
    port = _free_port()
    total = calls * workers
    env = {**base_env, "PUBLIC_URL": f"http://127.0.0.1:{port}", "MAX_CONCURRENT_CALLS": str(total * 2)}
    env["DATA_DIR"] = str(work / f"data-{workers}-{mix}")
    log_path = work / f"server-{workers}-{mix}.log"
    log = log_path.open("wb")
    server = subprocess.Popen(
        _voicebot(
            "--env-file", str(work / "no.env"), "serve", "--workers", str(workers), "--port", str(port)
        ),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    pinned = placement if workers == 1 else Placement()  # N workers get every core, shared with the load
    pinned.pin_server(server.pid)  # before it starts threads: they inherit the mask
    os.sched_setaffinity(fakes_pid, pinned.load or os.sched_getaffinity(0))
    try:
        _wait_ready(f"http://127.0.0.1:{port}/health", server)
        pids = [server.pid, *_children(server.pid)]
        out = work / f"sim-{workers}-{mix}.json"
        redis_before = _redis_commands(env["REDIS_URL"])
        pg_before = _pg_transactions(pg, DB)
        log_start = log_size(log_path)
        cpu_before, t0 = _cpu(pids), time.monotonic()
        sim = _voicebot("simulate", "--url", f"http://127.0.0.1:{port}", "--calls", str(total), "--quiet")
        sim += ["--scenario", mix, "--ramp-up", str(ramp), "--duration", str(seconds), "--json", str(out)]
        proc = subprocess.Popen(sim, stdout=subprocess.DEVNULL, env=env)
        pinned.pin_load(proc.pid)
        # The steady part: every call placed, none hung up yet. Its CPU share is the server's load at `total`.
        _sleep_until(t0 + ramp + 2)
        steady_cpu, steady_t = _cpu(pids), time.monotonic()
        _sleep_until(t0 + ramp + seconds - 1)
        steady_cpu, steady_t = _cpu(pids) - steady_cpu, time.monotonic() - steady_t
        proc.wait(timeout=ramp + seconds + 180)
        cpu_s = _cpu(pids) - cpu_before
        time.sleep(1.0)  # the store's last batch (it lingers 0.5 s) before counting transactions
        redis_ops = _redis_commands(env["REDIS_URL"]) - redis_before
        pg_ops = _pg_transactions(pg, DB) - pg_before
    finally:
        server.terminate()
        server.wait(90)
        log.close()
    trouble = count_trouble(log_path, log_start)
    data = json.loads(out.read_text())["calls"]
    v2v = [float(x) for c in data for x in c["response_latency_ms"]]
    barge = [float(x) for c in data for x in c["barge_in_reaction_ms"]]
    placed = max(len(data), 1)
    call_s = sum(float(c["duration_s"]) for c in data)
    bot_s = sum(int(c["audio_bytes"]) for c in data) / 8000
    return {
        "workers": workers,
        "mix": mix,
        "calls": total,
        "placement": pinned.describe(),
        "v2v_p50": percentile(v2v, 50),
        "v2v_p95": percentile(v2v, 95),
        "barge_p95": percentile(barge, 95),
        "server_cpu": steady_cpu / steady_t * 100,
        "cpu_ms_per_call_s": cpu_s * 1000 / call_s if call_s else None,
        "cpu_per_call": steady_cpu / steady_t * 100 / total,
        "bot_talk_percent": bot_s / call_s * 100 if call_s else None,
        "call_s": call_s,
        # Seconds of call per answered caller turn: the turn rate ``bench.call_cost`` prices.
        "turn_every_s": call_s / len(v2v) if v2v else None,
        "underruns": sum(len(c["underrun_ms"]) for c in data),
        "bot_underruns": trouble.underruns,
        "budget_expiries": trouble.budget_expiries,
        "fallbacks": trouble.fallbacks,
        "failed": sum(c["error"] is not None for c in data),
        "redis_per_call": redis_ops / placed,
        "pg_per_call": pg_ops / placed,
    }


def _f(value: float | None, fmt: str = ".0f") -> str:
    return "-" if value is None else format(value, fmt)


def table(rows: Sequence[dict[str, Any]]) -> str:
    head = (
        f"{'workers':>7} {'mix':<15} {'calls':>5} | {'v2v p50/p95 ms':>15} {'barge p95':>9} | "
        f"{'CPU%':>5} {'%/call':>6} {'ms/call-s':>9} {'bot talk':>8} | {'underruns':>9} {'(bot)':>5} "
        f"{'budget':>6} {'fallback':>8} {'failed':>6} | {'redis/call':>10} {'pg tx/call':>10}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['workers']:>7} {MIXES[r['mix']]:<15} {r['calls']:>5} | "
            f"{_f(r['v2v_p50']):>6} / {_f(r['v2v_p95']):>6} {_f(r['barge_p95']):>9} | "
            f"{r['server_cpu']:>5.0f} {r['cpu_per_call']:>6.2f} {_f(r['cpu_ms_per_call_s'], '.2f'):>9} "
            f"{_f(r['bot_talk_percent']):>7}% | {r['underruns']:>9} {r['bot_underruns']:>5} "
            f"{r['budget_expiries']:>6} {r['fallbacks']:>8} {r['failed']:>6} | "
            f"{r['redis_per_call']:>10.1f} {r['pg_per_call']:>10.1f}"
        )
    return "\n".join(lines)


LEGEND = """\
CPU% = the server processes' share of one core while every call is up (steady window); %/call = CPU% / calls;
ms/call-s = server CPU-milliseconds per second of call over the whole run (set-up and hang-ups included: it
stays meaningful on a shared machine); bot talk = share of call time the bot's audio covers; underruns as the
caller heard them (bot: as the server's playout saw them); budget = provider time budgets that expired;
fallback = failures answered by the backup voice or a fallback phrase (both from the server's log)."""


DB = "bench_fleet"
KEEP_ENV = ("PATH", "HOME", "LANG", "TMPDIR")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200, help="Concurrent calls per worker.")
    parser.add_argument("--workers", default="1,2", help="Worker counts, one row each.")
    parser.add_argument("--mixes", default="bargein,turns", help="Call mixes: bargein, turns.")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--ramp", type=float, default=5.0)
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="One worker on CPU 0, fakes and simulator on the rest (N workers always get every CPU).",
    )
    parser.add_argument("--json", type=Path, default=None, help="Write every figure here too.")
    args = parser.parse_args(argv)
    placement = Placement.split() if args.pin else Placement()
    rows = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp,
        redis_server() as rds,
        postgres_server() as pg,
    ):
        work = Path(tmp)
        env = {
            k: v for k, v in os.environ.items() if not k.isupper() or k in ("PATH", "HOME", "LANG", "TMPDIR")
        }
        url = create_database(pg, DB)
        with _fakes(env) as (fakes_url, fakes_pid):
            env |= {
                "OPENAI_API_KEY": "sk-bench",
                "OPENAI_BASE_URL": f"{fakes_url}/v1",
                "ELEVENLABS_API_KEY": "el-bench",
                "ELEVENLABS_BASE_URL": fakes_url,
                "STT_PROVIDER": "openai",
                "LLM_PROVIDER": "openai",
                "TTS_PROVIDER": "elevenlabs",
                "REDIS_URL": rds.url,
                "DATABASE_URL": url,
                "LOG_LEVEL": "warning",
                "LOG_FORMAT": "json",
            }
            for mix in args.mixes.split(","):
                for workers in (int(w) for w in args.workers.split(",")):
                    row = run_row(
                        workers, mix, args.calls, args.seconds, args.ramp, env, work, pg, placement, fakes_pid
                    )
                    rows.append(row)
                    print(
                        f"{workers} × {args.calls} {mix}: server CPU {row['server_cpu']:.0f} %, "
                        f"v2v p95 {_f(row['v2v_p95'])} ms, underruns {row['underruns']}, "
                        f"a turn every {_f(row['turn_every_s'], '.1f')} s per call",
                        file=sys.stderr,
                        flush=True,
                    )
    print(f"machine: {machine()}")
    print(f"providers (fakes): STT {STT_MS} ms, LLM first token {LLM_MS} ms, TTS first byte {TTS_MS} ms")
    print("state: Redis (tokens, live calls, console events), PostgreSQL (call records)")
    print(f"placement: 1 worker: {placement.describe()}; more workers: every process on every CPU")
    print(table(rows))
    print(LEGEND)
    if args.json is not None:
        args.json.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
