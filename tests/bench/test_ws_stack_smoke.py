"""``bench.ws_stack`` runs every server stack and prints its table; the figures matter, not assertions."""

from __future__ import annotations

import pytest

from bench.ws_stack import VARIANTS, main


def test_ws_stack_prints_a_row_per_server_stack(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--connections", "3", "--seconds", "0.5"]) == 0
    printed = capsys.readouterr().out
    print(printed)
    assert "machine: " in printed
    for name in VARIANTS:
        row = next(line for line in printed.splitlines() if line.startswith(name))
        assert float(row.split()[-4]) > 0, row  # messages a second: every stack was reached and fed
