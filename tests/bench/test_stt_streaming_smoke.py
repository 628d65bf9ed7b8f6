"""The streaming-STT benchmark runs end to end at one call for a second per mode; figures are not asserted."""

from __future__ import annotations

import pytest

from bench.stt_streaming import main


def test_the_benchmark_prints_a_row_per_mode(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--levels", "1", "--seconds", "1.5", "--turn-s", "0.5"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[-3:]]
    assert [(r[0], r[1]) for r in rows] == [("batch", "-"), ("realtime", "20"), ("realtime", "100")]
    assert all(r[4] == "0" for r in rows), "no failed commit"
