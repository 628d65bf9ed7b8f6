"""Streaming against batch transcription: commit → transcript latency and CPU per call, many calls at once.

Run from the repository root: ``python -m bench.stt_streaming`` (``--levels 1,50,200 --seconds 20``; the
smoke size is ``--levels 1,5 --seconds 4``). Not a test: it prints a table.

The provider fakes run in their own process (``voicebot fakes``) with fixed latencies: the realtime final
``--realtime-ms`` after the commit (100 ms), the batch upload's answer ``--stt-ms`` after the request
(300 ms). This process plays the bot's side only: for each call a transcriber on the real openai SDK and a
real socket, fed a 20 ms μ-law frame every 20 ms of real time by one ticker for all calls, committing every
``--turn-s`` seconds with the calls' turns spread evenly, while the frames of the next turn go on.

Columns: latency from ``commit()`` to the transcript (p50/p95); overhead = p95 − the fake's configured
latency (what our adapter, the SDK, the socket and the event loop add at that load); CPU % of one core per
call over the steady window (this process only: the adapter's feeding, batching, sending and parsing).
``append`` is the audio per socket message: 20 ms is one send per frame, 100 ms the default batching.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx
import structlog
from openai import AsyncOpenAI

from bench.processes import _free_port, _voicebot
from bench.run import machine
from media.clients import Rotation, clients_for
from media.codec import FRAME_BYTES
from media.streaming_stt import BufferedSTT, StreamingSTT, StreamingTranscriber
from media.stt_openai import OpenAISpeechToText
from media.stt_realtime import RealtimeSTT
from simulator.report import percentile

SPEECH = bytes((i * 37) % 256 for i in range(FRAME_BYTES))
"""A frame of μ-law that is no silence; the fake answers from its default transcript."""


@dataclass(frozen=True, slots=True)
class Row:
    mode: str
    append_ms: int
    calls: int
    latencies_ms: list[float]
    failures: int
    cpu_pct_per_call: float
    configured_ms: float


def _clients(base_url: str, calls: int) -> Rotation[AsyncOpenAI]:
    return Rotation(
        [
            AsyncOpenAI(api_key="sk-bench", base_url=base_url, max_retries=0, timeout=10)
            for _ in range(clients_for(calls))
        ]
    )


def _engine(mode: str, clients: Rotation[AsyncOpenAI], append_ms: int) -> StreamingSTT:
    batch = OpenAISpeechToText(clients, timeout_s=5, max_attempts=1)
    if mode == "batch":
        return BufferedSTT(batch)
    return RealtimeSTT(clients, fallback=batch, budget_s=5, final_budget_s=2, append_ms=append_ms)


async def run_level(
    base_url: str, mode: str, append_ms: int, calls: int, seconds: float, turn_s: float, configured_ms: float
) -> Row:
    clients = _clients(base_url, calls)
    engine = _engine(mode, clients, append_ms)
    stts: list[StreamingTranscriber] = [engine.open_call(f"CA{n:04d}") for n in range(calls)]
    await asyncio.gather(*(stt.start() for stt in stts))
    frames_per_turn = int(turn_s * 50)
    phase = [n * frames_per_turn // calls for n in range(calls)]
    latencies: list[float] = []
    failures = 0
    pending: set[asyncio.Task[None]] = set()
    loop = asyncio.get_running_loop()

    async def commit(stt: StreamingTranscriber, measured: bool) -> None:
        nonlocal failures
        started = loop.time()
        try:
            await stt.commit()
        except Exception:  # noqa: BLE001 - counted, the bench goes on
            failures += 1
            return
        if measured:
            latencies.append((loop.time() - started) * 1000)

    total_ticks = int(seconds * 50)
    warm_ticks = min(frames_per_turn, total_ticks // 4)
    cpu_start = 0.0
    next_at = loop.time()
    for tick in range(total_ticks):
        if tick == warm_ticks:
            cpu_start = time.process_time()
        for n, stt in enumerate(stts):
            stt.feed(SPEECH)
            if (tick + phase[n]) % frames_per_turn == frames_per_turn - 1:
                task = asyncio.create_task(commit(stt, tick >= warm_ticks))
                pending.add(task)
                task.add_done_callback(pending.discard)
        next_at += 0.02
        await asyncio.sleep(max(0.0, next_at - loop.time()))
    cpu_s = time.process_time() - cpu_start
    steady_s = (total_ticks - warm_ticks) * 0.02
    await asyncio.gather(*pending)
    await asyncio.gather(*(stt.close() for stt in stts))
    for client in clients.clients:
        await client.close()
    return Row(mode, append_ms, calls, latencies, failures, 100 * cpu_s / steady_s / calls, configured_ms)


def table(rows: Sequence[Row]) -> str:
    head = (
        f"{'mode':<9}{'append':>7}{'calls':>7}{'turns':>7}{'fail':>6}{'p50 ms':>8}{'p95 ms':>8}"
        f"{'fake ms':>8}{'overhead p95':>14}{'CPU %/call':>12}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        p50 = percentile(r.latencies_ms, 50) if r.latencies_ms else float("nan")
        p95 = percentile(r.latencies_ms, 95) if r.latencies_ms else float("nan")
        append = f"{r.append_ms}" if r.mode == "realtime" else "-"
        lines.append(
            f"{r.mode:<9}{append:>7}{r.calls:>7}{len(r.latencies_ms):>7}{r.failures:>6}{p50:>8.0f}{p95:>8.0f}"
            f"{r.configured_ms:>8.0f}{p95 - r.configured_ms:>14.0f}{r.cpu_pct_per_call:>12.3f}"
        )
    return "\n".join(lines)


async def _bench(args: argparse.Namespace, base_url: str) -> list[Row]:
    rows = []
    for calls in args.levels:
        for mode, append_ms in (("batch", 0), ("realtime", 20), ("realtime", 100)):
            configured = args.realtime_ms if mode == "realtime" else args.stt_ms
            row = await run_level(base_url, mode, append_ms, calls, args.seconds, args.turn_s, configured)
            rows.append(row)
            print(table([row]).splitlines()[-1], flush=True)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stt_streaming", description=__doc__.split("\n")[0])
    parser.add_argument("--levels", type=lambda s: [int(x) for x in s.split(",")], default=[1, 50, 200])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each level")
    parser.add_argument("--turn-s", type=float, default=2.0, help="audio per turn before each commit")
    parser.add_argument("--realtime-ms", type=float, default=100.0)
    parser.add_argument("--stt-ms", type=float, default=300.0)
    args = parser.parse_args(argv)
    port = _free_port()
    cmd = _voicebot("fakes", "--port", str(port), "--log-level", "warning")
    cmd += ["--realtime-ms", str(args.realtime_ms), "--stt-ms", str(args.stt_ms)]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    fake = subprocess.Popen(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"}, **quiet)
    try:
        for _ in range(200):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            time.sleep(0.05)
        print(f"CPU: {machine()}; fake: realtime final {args.realtime_ms:.0f} ms, batch {args.stt_ms:.0f} ms")
        print(table([]))
        rows = asyncio.run(_bench(args, f"http://127.0.0.1:{port}/v1"))
        print()
        print(table(rows))
    finally:
        fake.terminate()
        fake.wait(timeout=10)
    return 0


if __name__ == "__main__":
    # Warnings and up when run as a script; never reconfigure logging for a process that imports main().
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    raise SystemExit(main())
