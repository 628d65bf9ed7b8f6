"""The turn-taking benchmark's corpus builder and scorer run on three turns; figures are not asserted."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.hesitation_corpus import CORPUS, build_corpus
from bench.turn_taking import main, run_turn, score
from media.turns import TurnConfig


def test_corpus_builder_and_scorer_run_on_three_turns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VOICEBOT_BENCH_CACHE", str(tmp_path))
    turns = build_corpus(limit=3)
    assert len(turns) == 3
    assert list(tmp_path.glob("*.ulaw"))  # rendered audio is cached outside the repository
    first = turns[0]
    assert first.pauses_ms == tuple(p for p in CORPUS[0][1] if isinstance(p, int))
    assert first.words_until(first.end_ms) == " ".join(p for p in CORPUS[0][1] if isinstance(p, str))
    assert first.words_until(0) == ""
    outcome = run_turn(first, TurnConfig(), stt_ms=100)
    assert outcome.cut_off or outcome.delay_ms is not None
    row = score("silence alone 300 ms", turns, TurnConfig(end_of_turn_silence_ms=300, eager_eot_ms=0), None)
    assert 0.0 <= row.cut_off_rate <= 1.0
    assert main(["--limit", "3", "--stt-ms", "100"]) == 0
    out = capsys.readouterr().out
    assert "words + silence, eager 100, STT 100" in out
    assert "judge CPU" in out
