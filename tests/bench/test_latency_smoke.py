"""The whole-call latency benchmark runs both paths end to end at one call; figures are not asserted."""

from __future__ import annotations

import pytest

from bench.latency import main

pytestmark = [pytest.mark.timeout(300), pytest.mark.realtime]


def test_the_benchmark_prints_a_row_per_path(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "--levels",
                "1",
                "--seconds",
                "16",
                "--ramp",
                "0",
                "--warmup-s",
                "0",
                "--greetings",
                "2",
                "--no-pin",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in out if line.split()[:1] in (["today"], ["new"])]
    assert [r[0] for r in rows] == ["today", "new"]
    for row in rows:
        assert int(row[2]) >= 1, "at least one answered turn"
        assert row[-1] == "0", "no failed call"
    assert rows[0][-2] == "0%"  # today's path never answers preemptively
    assert rows[1][-2].endswith("%")  # the new one reports its share (statements end at 200 ms: often none)
    assert any(line.startswith("  N=3:") for line in out)
