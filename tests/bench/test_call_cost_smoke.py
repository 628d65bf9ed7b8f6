"""``bench.call_cost`` measures its parts and prints the model; the figures are the point, not assertions."""

from __future__ import annotations

import pytest

from bench.call_cost import frame_work_us, main


def test_call_cost_prints_the_parts_and_the_calls_they_leave_a_core(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["--sockets", "5", "--seconds", "1", "--requests", "2", "--turn-every", "5"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    print(printed)
    assert "machine: " in printed
    for part in ("socket stack", "STT (batch, 2.5 s)", "LLM reply (streamed)", "TTS (2 sentences)"):
        assert part in printed
    assert "calls at 70%" in printed


def test_the_call_s_own_frame_work_is_timed_with_the_bot_silent_and_talking() -> None:
    assert frame_work_us(False, seconds=2) > 0
    assert frame_work_us(True, seconds=2) > 0
