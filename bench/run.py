"""Latency, barge-in, CPU and memory of the real bot under simulated Twilio load, and a leak run.

Run from the repository root: ``python -m bench.run`` (``--help`` for options; ``--levels 1,5 --seconds 8
--leak-calls 20`` is the CI smoke size). What it does:

1. starts ``voicebot fakes`` (a process) with fixed provider latencies: STT 300 ms, LLM first token 350 ms,
   TTS first byte 150 ms;
2. starts ``voicebot serve`` (a process) with default settings against them (``PUBLIC_URL`` on loopback,
   ``MAX_CONCURRENT_CALLS`` above the highest level, ``DATA_DIR`` in a temporary directory);
3. for each level runs ``voicebot simulate --scenario bargein`` (``--scenario turns``: the talk-heavy mix;
   one process, two from 100 calls up) with that many concurrent calls, sampling the server's CPU and RSS
   from ``/proc/<pid>`` every 0.5 s, and counting budget expiries and fallbacks in the server's log;
4. prints one table; then places short calls one after another and compares RSS after the first 100 with
   RSS at the end.

On a machine with two or more CPUs the server is pinned to CPU 0 and the fakes and simulators to the others
(``--no-pin`` turns this off): the figures then measure the bot on one core, as a deployment would see it, not
the bot fighting its own load generator for the same cores. The server's event loop is one thread; the table
says which placement was used.

Overhead is response latency − (end-of-turn silence + STT + LLM first token + TTS first byte): what the bot's
own code, the network and the simulator add. CPU % per call is the server's CPU time over the steady part
of the level (after the ramp-up, before the hang-ups) divided by the calls; RSS per call is the peak RSS in
that window above the idle level after a warm-up call, divided by the calls.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.processes import (
    LLM_MS,
    STT_MS,
    TTS_MS,
    Placement,
    Sampler,
    Services,
    _voicebot,
    rss_mib,
    services,
)
from bench.server_log import count_trouble, log_size
from simulator.report import percentile


def simulate(
    svc: Services, out: Path, *, calls: int, extra: Sequence[str], quiet: bool = True
) -> subprocess.Popen[bytes]:
    base_url = svc.base_url
    args = ["simulate", "--url", base_url, "--calls", str(calls), "--json", str(out)]
    args += ["--overhead-base-ms", str(overhead_base_ms())]
    if quiet:
        args.append("--quiet")
    proc = subprocess.Popen(_voicebot(*args, *extra), stdout=subprocess.DEVNULL)
    svc.placement.pin_load(proc.pid)
    return proc


def overhead_base_ms() -> int:
    from web.settings import Settings

    end_of_turn: int = Settings.model_fields["end_of_turn_silence_ms"].default
    return end_of_turn + STT_MS + LLM_MS + TTS_MS


def _load_calls(paths: Sequence[Path]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    calls, summaries = [], []
    for path in paths:
        data = json.loads(path.read_text())
        calls += data["calls"]
        summaries.append(data["summary"])
    return calls, summaries


def _flat(calls: Sequence[dict[str, Any]], key: str) -> list[float]:
    return [float(x) for c in calls for x in c[key]]


def _pct(values: Sequence[float], q: float) -> str:
    p = percentile(values, q)
    return "-" if p is None else f"{p:.0f}"


@dataclass
class Level:
    calls: int
    figures: dict[str, Any]


def run_level(
    svc: Services,
    n: int,
    *,
    seconds: float,
    ramp_s: float,
    idle_rss: float,
    sim_procs: int,
    work: Path,
    scenario: str = "bargein",
) -> Level:
    procs = min(n, sim_procs)
    shares = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
    outs = [work / f"level{n}-{i}.json" for i in range(procs)]
    extra = ["--scenario", scenario, "--ramp-up", str(ramp_s), "--duration", str(seconds)]
    sampler = Sampler(svc.server.pid, svc.fakes.pid)
    server_log = work / "server.log"
    log_start = log_size(server_log)
    with sampler.running():
        t0 = time.monotonic()
        sims = [simulate(svc, out, calls=k, extra=extra) for k, out in zip(shares, outs, strict=True)]
        sampler.sims = [p.pid for p in sims]
        codes = [p.wait(timeout=ramp_s + seconds + 120) for p in sims]
    calls, summaries = _load_calls(outs)
    whole = sampler.samples[-1].server_cpu - sampler.samples[0].server_cpu if sampler.samples else 0.0
    call_s = sum(float(c["duration_s"]) for c in calls)
    trouble = count_trouble(server_log, log_start)
    window = [s for s in sampler.samples if t0 + ramp_s + 2 <= s.at <= t0 + ramp_s + seconds - 1]
    if len(window) < 2:
        window = sampler.samples
    first, last = window[0], window[-1]
    span = max(last.at - first.at, 1e-9)
    busy = (last.busy[0] - first.busy[0]) / max(last.busy[1] - first.busy[1], 1) * (os.cpu_count() or 1) * 100
    latencies = _flat(calls, "response_latency_ms")
    base = overhead_base_ms()
    overhead = [x - base for x in latencies]
    figures = {
        "calls": n,
        "calls_placed": len(calls),
        "failed": sum(c["error"] is not None for c in calls),
        "turns": len(latencies),
        "latency_p50": percentile(latencies, 50),
        "latency_p95": percentile(latencies, 95),
        "latency_max": max(latencies, default=None),
        "overhead_p50": percentile(overhead, 50),
        "overhead_p95": percentile(overhead, 95),
        "barge_in_n": len(_flat(calls, "barge_in_reaction_ms")),
        "barge_in_p50": percentile(_flat(calls, "barge_in_reaction_ms"), 50),
        "barge_in_p95": percentile(_flat(calls, "barge_in_reaction_ms"), 95),
        "server_cpu_percent": (last.server_cpu - first.server_cpu) / span * 100,
        "server_cpu_percent_per_call": (last.server_cpu - first.server_cpu) / span * 100 / n,
        "server_rss_peak_mib": max(s.server_rss for s in window),
        "rss_per_call_mib": (max(s.server_rss for s in window) - idle_rss) / n,
        "fakes_cpu_percent": (last.fakes_cpu - first.fakes_cpu) / span * 100,
        "simulator_cpu_percent": (last.sims_cpu - first.sims_cpu) / span * 100,
        "simulator_processes": procs,
        "simulator_frame_lag_p99_ms": max((s["frame_lag_ms"]["p99"] or 0) for s in summaries),
        "machine_busy_percent": busy,
        "underruns": sum(len(c["underrun_ms"]) for c in calls),
        "bot_underruns": trouble.underruns,
        "budget_expiries": trouble.budget_expiries,
        "fallbacks": trouble.fallbacks,
        "cpu_ms_per_call_s": whole * 1000 / call_s if call_s else None,
        "underrun_ms": sum(_flat(calls, "underrun_ms")),
        "protocol_errors": sum(len(c["protocol_errors"]) for c in calls),
        "missing": sum(len(c["missing"]) for c in calls),
        "simulator_exit_codes": codes,
    }
    return Level(n, figures)


def _f(value: float | None, fmt: str = ".0f") -> str:
    return "-" if value is None else format(value, fmt)


def table(levels: Sequence[Level]) -> str:
    head = (
        f"{'calls':>5} {'turns':>5} | {'latency p50/p95/max ms':>22} | {'overhead p50/p95':>16} | "
        f"{'barge-in p50/p95':>16} | {'CPU%':>4} {'CPU%/call':>9} {'ms/call-s':>9} {'RSS MiB/call':>12} | "
        f"{'underruns':>9} {'budget':>6} {'fallback':>8} {'proto err':>9} {'failed':>6} | "
        f"{'sim CPU%':>8} {'lag p99':>7} {'machine%':>8}"
    )
    rows = [head, "-" * len(head)]
    for lv in levels:
        f = lv.figures
        rows.append(
            f"{lv.calls:>5} {f['turns']:>5} | "
            f"{_f(f['latency_p50']):>6} / {_f(f['latency_p95']):>5} / {_f(f['latency_max']):>5} | "
            f"{_f(f['overhead_p50']):>7} / {_f(f['overhead_p95']):>6} | "
            f"{_f(f['barge_in_p50']):>7} / {_f(f['barge_in_p95']):>6} | "
            f"{f['server_cpu_percent']:>4.0f} {f['server_cpu_percent_per_call']:>9.2f} "
            f"{_f(f['cpu_ms_per_call_s'], '.2f'):>9} {f['rss_per_call_mib']:>12.2f} | "
            f"{f['underruns']:>9} {f['budget_expiries']:>6} {f['fallbacks']:>8} {f['protocol_errors']:>9} "
            f"{f['failed']:>6} | "
            f"{f['simulator_cpu_percent']:>8.0f} {_f(f['simulator_frame_lag_p99_ms']):>7} "
            f"{f['machine_busy_percent']:>8.0f}"
        )
    return "\n".join(rows)


def leak_run(svc: Services, total: int, work: Path, *, call_s: float) -> dict[str, Any]:
    """Short calls one after another: RSS after the first 100 (or a tenth) and after all of them."""
    first = min(100, max(1, total // 10))
    extra = ["--scenario", "silence", "--max-call-s", str(call_s)]
    rss = []
    t0 = time.monotonic()
    for i, n in enumerate((first, total - first)):
        if n <= 0:
            continue
        out = work / f"leak{i}.json"
        code = simulate(svc, out, calls=1, extra=[*extra, "--total-calls", str(n)]).wait()
        time.sleep(1.0)  # let the last call's clean-up finish
        calls, _ = _load_calls([out])
        rss.append((sum(1 for _ in calls), rss_mib(svc.server.pid), code))
    after_first, after_all = rss[0][1], rss[-1][1]
    return {
        "calls": sum(n for n, _, _ in rss),
        "first": first,
        "rss_after_first_mib": after_first,
        "rss_after_all_mib": after_all,
        "growth_percent": (after_all - after_first) / after_first * 100,
        "seconds": time.monotonic() - t0,
        "exit_codes": [c for _, _, c in rss],
    }


def machine() -> str:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpus = os.cpu_count()
    return f"{model or platform.processor()}, {cpus} CPUs, {mem:.0f} GiB, Python {platform.python_version()}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="1,10,50,100,200", help="Concurrent calls per level.")
    parser.add_argument("--seconds", type=float, default=25.0, help="Load per level after the ramp-up.")
    parser.add_argument("--ramp", type=float, default=5.0, help="Ramp-up per level (seconds).")
    parser.add_argument("--leak-calls", type=int, default=1000, help="Sequential short calls (0: skip).")
    parser.add_argument("--leak-call-s", type=float, default=0.5, help="Length of each leak-run call.")
    parser.add_argument("--warmup-s", type=float, default=25.0, help="Length of the warm-up call.")
    parser.add_argument("--sim-procs", type=int, default=0, help="Simulator processes (0: 1, or 2 ≥ 100).")
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Server on CPU 0, fakes and simulators on the rest (default when there are ≥ 2 CPUs).",
    )
    parser.add_argument("--json", type=Path, default=None, help="Write every figure here too.")
    parser.add_argument(
        "--scenario", default="bargein", help="Call mix: bargein (every other reply cut), turns (talk-heavy)."
    )
    args = parser.parse_args(argv)
    levels = [int(x) for x in args.levels.split(",") if x.strip()]
    placement = Placement.split() if args.pin else Placement()
    print(f"machine: {machine()}", flush=True)
    print(f"placement: {placement.describe()}", flush=True)
    print(
        f"providers (fakes): STT {STT_MS} ms, LLM first token {LLM_MS} ms, TTS first byte {TTS_MS} ms; "
        f"overhead = latency − {overhead_base_ms()} ms",
        flush=True,
    )
    results: list[Level] = []
    with tempfile.TemporaryDirectory(prefix="voicebot-bench-") as tmp:
        work = Path(tmp)
        with services(max(levels, default=1), work, placement) as svc:
            warm = simulate(
                svc,
                work / "warmup.json",
                calls=1,
                extra=["--scenario", "bargein", "--turns", "1", "--duration", str(args.warmup_s)],
            )
            warm.wait()
            time.sleep(1.0)
            idle_rss = rss_mib(svc.server.pid)
            print(f"server idle RSS after a warm-up call: {idle_rss:.1f} MiB", flush=True)
            for n in levels:
                procs = args.sim_procs or (2 if n >= 100 else 1)
                level = run_level(
                    svc,
                    n,
                    seconds=args.seconds,
                    ramp_s=args.ramp,
                    idle_rss=idle_rss,
                    sim_procs=procs,
                    work=work,
                    scenario=args.scenario,
                )
                results.append(level)
                f = level.figures
                print(
                    f"level {n}: {f['turns']} turns, overhead p95 {_f(f['overhead_p95'])} ms, barge-in p95 "
                    f"{_f(f['barge_in_p95'])} ms, server CPU {f['server_cpu_percent']:.0f} %, "
                    f"{_f(f['cpu_ms_per_call_s'], '.2f')} CPU ms per call-second, underruns {f['underruns']} "
                    f"(bot {f['bot_underruns']}), budget expiries {f['budget_expiries']}, fallbacks "
                    f"{f['fallbacks']}, failed {f['failed']}",
                    file=sys.stderr,
                    flush=True,
                )
                time.sleep(2.0)
            print()
            print(table(results))
            leak = None
            if args.leak_calls > 0:
                leak = leak_run(svc, args.leak_calls, work, call_s=args.leak_call_s)
                print(
                    f"\nleaks: {leak['calls']} sequential calls of {args.leak_call_s:g} s "
                    f"in {leak['seconds']:.0f} s; "
                    f"RSS after {leak['first']}: {leak['rss_after_first_mib']:.1f} MiB, after all: "
                    f"{leak['rss_after_all_mib']:.1f} MiB ({leak['growth_percent']:+.1f} %)"
                )
            if args.json is not None:
                args.json.write_text(
                    json.dumps(
                        {
                            "machine": machine(),
                            "placement": placement.describe(),
                            "levels": [lv.figures for lv in results],
                            "leak": leak,
                        },
                        indent=1,
                    )
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
