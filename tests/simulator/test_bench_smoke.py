"""The benchmark scripts end to end at CI size: real ``voicebot serve`` and ``voicebot fakes`` processes,
the simulator with 1 and 5 calls, a short leak run. Figures are printed, not asserted (machine-dependent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import run


@pytest.mark.realtime
@pytest.mark.timeout(120)
def test_benchmark_runs_at_1_and_5_calls(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    args = ["--levels", "1,5", "--seconds", "14", "--ramp", "0.5", "--warmup-s", "2"]
    assert run.main([*args, "--leak-calls", "10", "--leak-call-s", "0.3", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    print(printed)  # shown with -s: the figures are the point, not assertions
    assert "latency p50/p95/max" in printed
    assert "leaks: 10 sequential calls" in printed
    assert out.exists()
