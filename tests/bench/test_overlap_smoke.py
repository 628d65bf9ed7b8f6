"""The overlap benchmark runs end to end on one backchannel and one interruption; figures are not asserted."""

from __future__ import annotations

import pytest

from bench.overlap import main

pytestmark = pytest.mark.timeout(180)


def test_one_backchannel_and_one_interruption(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--backchannels", "mhm", "--interruptions", "Stopp.", "--points", "1.0"]) == 0
    out = capsys.readouterr().out
    assert "machine: " in out
    assert "backchannels: 1 calls, clears 0" in out  # the outcome, not a timing
    assert "interruptions: 1 calls, a clear in 1/1" in out
