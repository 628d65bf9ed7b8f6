"""Figures from a simulated load run: percentiles, a summary (JSON-ready), a text table, a progress line."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from simulator.load import CallResult, LoadProgress


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100) by linear interpolation between closest ranks; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * min(max(q, 0.0), 100.0) / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def distribution_ms(values: Sequence[float]) -> dict[str, float | int | None]:
    """Seconds in, milliseconds out: count, p50, p95, p99, max."""
    return {
        "n": len(values),
        "p50": _ms(percentile(values, 50)),
        "p95": _ms(percentile(values, 95)),
        "p99": _ms(percentile(values, 99)),
        "max": _ms(max(values) if values else None),
    }


def summarize(
    results: Iterable[CallResult],
    *,
    wall_s: float | None = None,
    overhead_base_ms: float | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One run's figures. ``overhead_base_ms`` (end-of-turn silence + provider latencies) is subtracted from
    each response latency to give ``overhead_ms``: what the bot's own code added."""
    calls = list(results)
    latencies = [x for r in calls for x in r.response_latencies]
    summary: dict[str, Any] = {
        "calls": len(calls),
        "failed_calls": sum(r.error is not None for r in calls),
        "errors": sorted({r.error for r in calls if r.error is not None})[:10],
        "response_latency_ms": distribution_ms(latencies),
        "barge_in_reaction_ms": distribution_ms([x for r in calls for x in r.barge_in_reactions]),
        "dtmf_latency_ms": distribution_ms([x for r in calls for x in r.dtmf_latencies]),
        "underruns": sum(len(r.underruns) for r in calls),
        "underrun_ms_total": round(sum(x for r in calls for x in r.underruns) * 1000, 1),
        "calls_with_underruns": sum(bool(r.underruns) for r in calls),
        "protocol_errors": sum(len(r.violations) for r in calls),
        "protocol_error_kinds": sorted({v for r in calls for v in r.violations})[:10],
        "missing": _count(m for r in calls for m in r.missing),
        "frames_sent": sum(r.frames_sent for r in calls),
        "bot_audio_s": round(sum(r.audio_bytes for r in calls) / 8000, 1),
    }
    if overhead_base_ms is not None:
        summary["overhead_base_ms"] = overhead_base_ms
        summary["overhead_ms"] = distribution_ms([x - overhead_base_ms / 1000 for x in latencies])
    if wall_s is not None:
        summary["wall_s"] = round(wall_s, 1)
    if extra:
        summary.update(extra)
    return summary


def _count(items: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return counts


def _fmt(dist: dict[str, Any], keys: Sequence[str] = ("p50", "p95", "max")) -> str:
    if not dist.get("n"):
        return "-"
    return " / ".join(f"{dist[k]:.0f}" for k in keys) + f" ms (n={dist['n']})"


def format_summary(summary: dict[str, Any]) -> str:
    lines = [
        f"calls                {summary['calls']} ({summary['failed_calls']} failed)",
        f"response latency     p50/p95/max {_fmt(summary['response_latency_ms'])}",
    ]
    if "overhead_ms" in summary:
        base = summary["overhead_base_ms"]
        lines.append(f"overhead (−{base:.0f} ms) p50/p95/max {_fmt(summary['overhead_ms'])}")
    lines += [
        f"barge-in reaction    p50/p95/max {_fmt(summary['barge_in_reaction_ms'])}",
    ]
    if summary["dtmf_latency_ms"]["n"]:
        lines.append(f"dtmf → audio         p50/p95/max {_fmt(summary['dtmf_latency_ms'])}")
    lines += [
        f"underruns            {summary['underruns']} ({summary['underrun_ms_total']:.0f} ms in "
        f"{summary['calls_with_underruns']} calls)",
        f"protocol errors      {summary['protocol_errors']}"
        + (f" {summary['protocol_error_kinds']}" if summary["protocol_errors"] else ""),
    ]
    if summary["missing"]:
        lines.append(f"waited in vain       {summary['missing']}")
    for error in summary["errors"]:
        lines.append(f"error                {error}")
    if "simulator_cpu_percent" in summary:
        lag = summary.get("frame_lag_ms", {})
        lines.append(
            f"simulator            {summary['simulator_cpu_percent']:.0f} % of a core, frame lag "
            f"p99 {lag.get('p99') or 0:.0f} ms max {lag.get('max') or 0:.0f} ms"
        )
    return "\n".join(lines)


class ProgressLine:
    """A status line on stderr, rewritten in place on a terminal, one line every ``every_s`` otherwise."""

    def __init__(self, progress: LoadProgress, target: int, *, stream: TextIO | None = None) -> None:
        self._p = progress
        self._target = target
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty()

    def line(self) -> str:
        p = self._p
        latencies, reactions = p.response_latencies(), p.barge_in_reactions()
        lat = percentile(latencies, 50)
        rea = percentile(reactions, 50)
        return (
            f"[{time.monotonic() - p.started_at:6.1f}s] active {p.active}/{self._target} placed {p.placed} "
            f"done {p.done} failed {p.failed} | turns {len(latencies)} latency p50 "
            f"{'-' if lat is None else f'{lat * 1000:.0f} ms'} | barge-ins {len(reactions)} reaction p50 "
            f"{'-' if rea is None else f'{rea * 1000:.0f} ms'} | underruns {p.underruns} "
            f"protocol errors {p.violations}"
        )

    def show(self) -> None:
        if self._tty:
            self._stream.write("\r\x1b[K" + self.line())
        else:
            self._stream.write(self.line() + "\n")
        self._stream.flush()

    def finish(self) -> None:
        self.show()
        if self._tty:
            self._stream.write("\n")
            self._stream.flush()
