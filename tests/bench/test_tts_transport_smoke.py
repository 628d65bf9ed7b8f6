"""The TTS transport benchmark runs end to end, two replies per mode; figures are not asserted."""

from __future__ import annotations

import pytest

from bench.tts_transport import MODES, main


def test_the_benchmark_prints_a_row_per_transport(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "--replies",
                "2",
                "--concurrency",
                "2",
                "--warmup",
                "0",
                "--token-ms",
                "2",
                "--tts-chunk-ms",
                "0",
            ]
        )
        == 0
    )
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[-len(MODES) :]]
    assert [r[0] for r in rows] == list(MODES)
    assert all((r[1], r[2]) == ("2", "0") for r in rows), "every reply was heard, none failed"
