"""Scenario results for people (a table per scenario and step) and for CI (JUnit XML and JSON)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from simulator.scenario_play import ScenarioResult


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def table(result: ScenarioResult) -> str:
    sc = result.scenario
    lines = [f"{result.status.upper():5} {sc.name}  ({result.seconds:.1f} s, {sc.path or 'inline'})"]
    if sc.xfail:
        lines.append(f"      expected to fail: {sc.xfail}")
    if result.error:
        lines.append(f"      error: {result.error}")
    if result.steps:
        lines.append(f"      {'#':>2} {'result':6} {'caller':34} {'latency':>8}  bot said")
    for s in result.steps:
        lat = f"{s.latency_ms:.0f} ms" if s.latency_ms is not None else "-"
        verdict = "pass" if s.passed else "FAIL"
        step = _cut(s.step.describe(), 34)
        lines.append(f"      {s.index:>2} {verdict:6} {step:34} {lat:>8}  {_cut(s.bot_said, 60)}")
        for c in s.checks:
            if c.ok is False:
                lines.append(f"             ✗ {c.name}: {c.detail}")
            elif c.ok is None:
                lines.append(f"             - {c.name}: {c.detail}")
    return "\n".join(lines)


def summary(results: list[ScenarioResult]) -> str:
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    parts = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    return f"{len(results)} scenarios: {parts}"


def to_json(results: list[ScenarioResult]) -> dict[str, Any]:
    return {
        "summary": {r: sum(1 for x in results if x.status == r) for r in ("pass", "fail", "xfail", "xpass")},
        "scenarios": [
            {
                "name": r.scenario.name,
                "path": str(r.scenario.path or ""),
                "status": r.status,
                "xfail": r.scenario.xfail,
                "error": r.error,
                "seconds": round(r.seconds, 2),
                "greeting_ms": None if r.greeting_ms is None else round(r.greeting_ms),
                "steps": [
                    {
                        "index": s.index,
                        "step": s.step.describe(),
                        "passed": s.passed,
                        "latency_ms": None if s.latency_ms is None else round(s.latency_ms),
                        "clear_ms": None if s.clear_ms is None else round(s.clear_ms),
                        "caller_said": s.caller_said,
                        "bot_said": s.bot_said,
                        "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in s.checks],
                    }
                    for s in r.steps
                ],
            }
            for r in results
        ],
    }


def write_json(results: list[ScenarioResult], path: Path) -> None:
    path.write_text(json.dumps(to_json(results), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def write_junit(results: list[ScenarioResult], path: Path) -> None:
    """One testcase per step (classname: the scenario), so CI shows which step of which call failed."""
    suite = ET.Element("testsuite", name="voicebot-scenarios")
    tests = failures = skipped = 0
    for r in results:
        cases: list[tuple[str, str | None]] = []
        if r.error:
            cases.append(("call", r.error))
        for s in r.steps:
            bad = s.failures()
            cases.append(
                (
                    f"{s.index:02d} {s.step.describe()}",
                    "; ".join(f"{c.name}: {c.detail}" for c in bad) or None,
                )
            )
        for name, failure in cases:
            tests += 1
            case = ET.SubElement(
                suite, "testcase", classname=r.scenario.name, name=name, time=f"{r.seconds:.2f}"
            )
            if failure and r.scenario.xfail:
                skipped += 1
                ET.SubElement(case, "skipped", message=f"expected failure: {r.scenario.xfail}").text = failure
            elif failure:
                failures += 1
                ET.SubElement(case, "failure", message=failure)
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    suite.set("skipped", str(skipped))
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)
