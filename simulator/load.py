"""Many calls at once: call slots started over a ramp-up, each placing calls that play a scenario.

Every call's figures are collected into a ``CallResult`` (what ``voicebot simulate --json`` writes), and a
``LoadProgress`` keeps running totals for the progress line.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from simulator.call import CallRefused, place_call, prime
from simulator.caller import Caller, FrameClock
from simulator.record import underruns
from simulator.scenarios import ScenarioConfig, run_scenario


@dataclass(slots=True)
class CallResult:
    index: int
    scenario: str
    call_sid: str = ""
    started_at: float = 0.0
    ended_at: float = 0.0
    error: str | None = None
    response_latencies: list[float] = field(default_factory=list)
    barge_in_reactions: list[float] = field(default_factory=list)
    dtmf_latencies: list[float] = field(default_factory=list)
    greeting_latency: float | None = None
    """From posting ``/voice`` to the first greeting audio at the caller (seconds)."""
    underruns: list[float] = field(default_factory=list)
    """Seconds of each underrun."""
    violations: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    frames_sent: int = 0
    audio_bytes: int = 0
    marks: int = 0
    clears: int = 0
    closed_by_bot: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            "index": self.index,
            "scenario": self.scenario,
            "call_sid": self.call_sid,
            "duration_s": round(self.ended_at - self.started_at, 3),
            "error": self.error,
            "response_latency_ms": [round(x * 1000, 1) for x in self.response_latencies],
            "barge_in_reaction_ms": [round(x * 1000, 1) for x in self.barge_in_reactions],
            "dtmf_latency_ms": [round(x * 1000, 1) for x in self.dtmf_latencies],
            "greeting_latency_ms": None
            if self.greeting_latency is None
            else round(self.greeting_latency * 1000, 1),
            "underrun_ms": [round(x * 1000, 1) for x in self.underruns],
            "protocol_errors": self.violations,
            "missing": self.missing,
            "frames_sent": self.frames_sent,
            "audio_bytes": self.audio_bytes,
            "marks": self.marks,
            "clears": self.clears,
            "closed_by_bot": self.closed_by_bot,
        }


def collect(result: CallResult, caller: Caller) -> None:
    rec = caller.record
    result.call_sid = caller.sim.call_sid
    result.response_latencies = rec.response_latencies()
    result.barge_in_reactions = rec.barge_in_reactions()
    result.dtmf_latencies = list(caller.dtmf_latencies)
    if rec.rung_at is not None and rec.first_audio_at is not None:
        result.greeting_latency = rec.first_audio_at - rec.rung_at
    result.underruns = [g.seconds for g in underruns(caller.playout.gaps, rec.utterances)]
    result.violations = list(rec.violations)
    result.missing = list(caller.missing)
    result.frames_sent = rec.frames_sent
    result.audio_bytes = rec.audio_bytes
    result.marks = len(rec.marks)
    result.clears = len(rec.clears)
    result.closed_by_bot = rec.closed_by_bot


@dataclass(frozen=True, slots=True)
class LoadConfig:
    base_url: str
    public_url: str | None = None
    auth_token: str | None = None
    concurrency: int = 1
    ramp_up_s: float = 0.0
    duration_s: float = 30.0
    """Every call ends at ramp-up + duration after the start (sooner if its scenario ends)."""
    total_calls: int | None = None
    """Place this many calls in all (back to back in each slot) instead of one per slot."""
    max_call_s: float | None = None
    """Hang up each call this long after it was answered."""
    scenario: ScenarioConfig = field(default_factory=ScenarioConfig)


@dataclass(slots=True)
class LoadProgress:
    started_at: float
    placed: int = 0
    active: int = 0
    done: int = 0
    failed: int = 0
    latencies: list[float] = field(default_factory=list)
    reactions: list[float] = field(default_factory=list)
    underruns: int = 0
    violations: int = 0
    live: set[Caller] = field(default_factory=set)
    """Calls in progress, whose figures so far count in the progress line too."""

    def response_latencies(self) -> list[float]:
        return self.latencies + [x for c in self.live for x in c.record.response_latencies()]

    def barge_in_reactions(self) -> list[float]:
        return self.reactions + [x for c in self.live for x in c.record.barge_in_reactions()]


async def run_load(
    cfg: LoadConfig,
    *,
    on_call_done: Callable[[CallResult], None] | None = None,
    progress: LoadProgress | None = None,
    frame_clock: FrameClock | None = None,
) -> list[CallResult]:
    """Runs ``cfg.concurrency`` call slots (started evenly over the ramp-up); returns every call's result."""
    await prime(cfg.base_url)
    t0 = time.monotonic()
    deadline = t0 + cfg.ramp_up_s + cfg.duration_s
    clock = frame_clock or FrameClock()
    prog = progress or LoadProgress(started_at=t0)
    results: list[CallResult] = []
    counter = itertools.count()

    async def one_call(index: int) -> CallResult:
        result = CallResult(index=index, scenario=cfg.scenario.scenario, started_at=time.monotonic())
        results.append(result)
        prog.placed += 1
        prog.active += 1
        call_deadline = deadline if cfg.total_calls is None else float("inf")
        if cfg.max_call_s is not None:
            call_deadline = min(call_deadline, time.monotonic() + cfg.max_call_s)
        caller: Caller | None = None
        try:
            async with place_call(cfg.base_url, public_url=cfg.public_url, auth_token=cfg.auth_token) as sim:
                caller = Caller(sim, clock)
                prog.live.add(caller)
                caller.begin_streaming()
                try:
                    timeout = max(0.0, call_deadline - time.monotonic()) + 0.001
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(timeout if timeout != float("inf") else None):
                            await run_scenario(caller, cfg.scenario, call_deadline)
                finally:
                    caller.stop_streaming()
        except CallRefused as exc:
            result.error = f"refused: {exc}"
        except Exception as exc:  # noqa: BLE001 - one failed call is a result, not the end of the run
            result.error = f"{type(exc).__name__}: {exc}"
        finally:
            result.ended_at = time.monotonic()
            if caller is not None:
                prog.live.discard(caller)
                collect(result, caller)
            prog.active -= 1
            prog.done += 1
            prog.failed += result.error is not None
            prog.latencies += result.response_latencies
            prog.reactions += result.barge_in_reactions
            prog.underruns += len(result.underruns)
            prog.violations += len(result.violations)
            if on_call_done is not None:
                on_call_done(result)
        return result

    async def slot(n: int) -> None:
        if cfg.concurrency > 1:
            await asyncio.sleep(cfg.ramp_up_s * n / cfg.concurrency)
        while True:
            index = next(counter)
            if cfg.total_calls is not None and index >= cfg.total_calls:
                return
            if (await one_call(index)).error is not None:
                await asyncio.sleep(0.5)  # a refused call: do not hammer the bot in a tight loop
            if cfg.total_calls is None and time.monotonic() >= deadline - 1.0:
                return

    try:
        async with asyncio.TaskGroup() as group:
            for n in range(cfg.concurrency):
                group.create_task(slot(n))
    finally:
        if frame_clock is None:
            await clock.close()
    return sorted(results, key=lambda r: r.index)
