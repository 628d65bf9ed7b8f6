"""``bench.wire_path`` runs and prints its table; the figures are the point, not assertions."""

from __future__ import annotations

import pytest

from bench.wire_path import main


def test_wire_path_prints_before_and_after_per_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main() == 0
    printed = capsys.readouterr().out
    print(printed)
    assert "machine: " in printed
    rows = ("inbound: parse a media message", "inbound: frame PCM + level", "outbound: build a media message")
    assert all(row in printed for row in rows)
    assert "bot speaking (echo gate on)" in printed
