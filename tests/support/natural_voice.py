"""A German caller that sounds like a person: eSpeak NG driving an MBROLA voice built from recordings.

eSpeak's own formant voice is what the bot's keyless voice sounds like, and it is a poor stand-in for a
caller where a speech recogniser has to understand the words: the packaged Whisper base turned "Wann haben
Sie am Samstag geöffnet?" into "Man hat ein Mie, ein Mie, …" and refused two of ten profile questions as
guesses (`bench.local_stt --voice espeak`). MBROLA's German diphone voice ``de6`` (a male speaker, cut
from real recordings) is understood in ten of ten (`--voice mb-de6`). Tests that need the *words* of a
caller to come through a real recogniser use this; tests of timing and levels keep eSpeak, which renders
in-process and needs nothing from the system.

The voice is Debian's ``mbrola-de6`` (non-free section: free for non-commercial use, used here only to
play the caller in tests, never shipped). ``scripts/test`` installs it; without it ``require_voice``
skips with the reason.
"""

from __future__ import annotations

import audioop
import functools
import io
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from tests.support.audio import speech_at_level, to_samples, to_ulaw

VOICE = "mb-de6"
VOICE_DATA = Path("/usr/share/mbrola/de6")
RATE_WPM = 140
"""Calm, clear telephone speech; at 160 eSpeak's timing makes the diphones slur."""


def voice_missing() -> str:
    """Why the natural voice cannot be used here, or "" when it can."""
    if shutil.which("espeak-ng") is None:
        return "Debian's espeak-ng is not installed (apt-get install espeak-ng mbrola-de6)"
    if not VOICE_DATA.exists():
        return "the MBROLA German voice is not installed (apt-get install mbrola-de6, Debian non-free)"
    return ""


def require_voice() -> None:
    reason = voice_missing()
    if reason:
        pytest.skip(reason)


@functools.lru_cache(maxsize=32)
def natural_german_ulaw(text: str, *, level_db: float = -20.0, rate_wpm: int = RATE_WPM) -> bytes:
    """``text`` spoken by MBROLA's German voice, trimmed to the speech, at ``level_db`` dBFS, 8 kHz μ-law.

    MBROLA is deterministic: the same text gives the same bytes on every run, so a test that passes on a
    rendering passes on it again.
    """
    done = subprocess.run(
        ["espeak-ng", "-v", VOICE, "-s", str(rate_wpm), "--stdout", text],
        capture_output=True,
        check=True,
        timeout=30,
    )
    with wave.open(io.BytesIO(done.stdout)) as wav:
        rate, pcm = wav.getframerate(), wav.readframes(wav.getnframes())
    if not pcm:
        raise RuntimeError(f"{VOICE} rendered no audio for {text!r}: {done.stderr.decode(errors='replace')}")
    pcm, _ = audioop.ratecv(pcm, 2, 1, rate, 8000, None)
    # Through μ-law once, as the phone line would carry it, before the level is measured.
    return speech_at_level(to_samples(to_ulaw(np.frombuffer(pcm, dtype="<i2").astype(np.float64))), level_db)
