"""The fake transcriber's ear: it returns the words of the registered clips it finds in an upload.

A whole-call test about turn-taking must know which words reached STT ("a 900 ms pause after an incomplete
first part gets one answer, to the whole sentence"), and a queue of canned transcripts cannot say whether
the bot sent half a turn or all of it. So a test registers the text of each clip it will play; the fake
then finds those clips in the uploaded WAV and answers with their words, in the order they were spoken.

Finding a clip: the simulator sends the clip's μ-law bytes unchanged, and the bot decodes them with the
same table, so the clip's PCM appears in the upload sample for sample. A 60 ms fingerprint, taken where the
clip first gets loud, is searched for in the upload; from where it sits, the part of the clip inside the
upload is known, and a clip cut off at the upload's end contributes the words of the part that made it
(words placed by their share of the text's characters).
"""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass

import numpy as np

from media.codec import ulaw_to_array

FINGERPRINT_SAMPLES = 480
"""60 ms at 8 kHz: long enough that speech never repeats it by chance, short enough for a short "ja"."""
LOUD = 32768 * 10 ** (-40 / 20)
"""The fingerprint starts at the first sample above -40 dBFS: the clip's quiet edges may be trimmed."""
WHOLE = 0.97
"""A clip this much inside the upload counts as whole: the bot may trim a few quiet trailing frames."""


@dataclass(frozen=True, slots=True)
class Clip:
    text: str
    pcm16: bytes
    fingerprint: bytes
    fingerprint_at: int
    """Byte offset of the fingerprint inside ``pcm16``."""


class ClipRegistry:
    """Text ↔ audio of every caller clip a test will play; empty means "answer from the queue"."""

    def __init__(self) -> None:
        self._clips: list[Clip] = []

    def __bool__(self) -> bool:
        return bool(self._clips)

    def register(self, text: str, ulaw: bytes) -> None:
        """``ulaw`` exactly as the simulator will send it (8 kHz μ-law); ``text`` what a caller said."""
        samples = ulaw_to_array(ulaw)
        loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > LOUD)
        if len(samples) < FINGERPRINT_SAMPLES or not len(loud):
            raise ValueError(f"clip {text!r} is too short or too quiet to be found again")
        start = int(min(loud[0], len(samples) - FINGERPRINT_SAMPLES))
        pcm = samples.tobytes()
        fingerprint = pcm[start * 2 : (start + FINGERPRINT_SAMPLES) * 2]
        self._clips.append(Clip(text, pcm, fingerprint, start * 2))

    def clear(self) -> None:
        self._clips.clear()

    def transcribe_wav(self, wav: bytes) -> str | None:
        """The words of the registered clips in a WAV upload, in spoken order; None if none is in it."""
        try:
            with wave.open(io.BytesIO(wav)) as w:
                if w.getsampwidth() != 2 or w.getnchannels() != 1:
                    return None
                pcm = w.readframes(w.getnframes())
        except (wave.Error, EOFError):
            return None
        return self.transcribe_pcm(pcm)

    def transcribe_pcm(self, pcm16: bytes) -> str | None:
        found: list[tuple[int, str]] = []
        for clip in self._clips:
            for at in _occurrences(pcm16, clip.fingerprint):
                clip_start = at - clip.fingerprint_at
                inside = (len(pcm16) - clip_start) / len(clip.pcm16)
                words = clip.text if inside >= WHOLE else _leading_words(clip.text, inside)
                if words:
                    found.append((clip_start, words))
        if not found:
            return None
        return " ".join(words for _, words in sorted(found))

    def transcribe_tail(self, heard: bytes, tail: int) -> str | None:
        """The words spoken in the last ``tail`` bytes of ``heard`` (PCM16, all the audio so far).

        A realtime socket is committed at every pause, so one clip may reach the fake in two commits
        ("Ich möchte" | "meinen Zählerstand melden."). The second holds no fingerprint of its own; found in
        what was heard before it, the clip's position says which of its words the tail holds.
        """
        start = len(heard) - tail
        found: list[tuple[int, str]] = []
        for clip in self._clips:
            for at in _occurrences(heard, clip.fingerprint):
                clip_start = at - clip.fingerprint_at
                before = (start - clip_start) / len(clip.pcm16)
                if before >= WHOLE:
                    continue  # the clip was over before this commit
                inside = (len(heard) - clip_start) / len(clip.pcm16)
                upto = clip.text.split() if inside >= WHOLE else _leading_words(clip.text, inside).split()
                done = len(_leading_words(clip.text, before).split()) if before > 0 else 0
                if upto[done:]:
                    found.append((clip_start, " ".join(upto[done:])))
        if not found:
            return None
        return " ".join(words for _, words in sorted(found))


def _occurrences(haystack: bytes, needle: bytes) -> list[int]:
    """Even byte offsets (whole samples) where ``needle`` sits in ``haystack``."""
    hits = []
    at = haystack.find(needle)
    while at >= 0:
        if at % 2 == 0:
            hits.append(at)
        at = haystack.find(needle, at + 1)
    return hits


def _leading_words(text: str, share: float) -> str:
    """The words of ``text`` spoken within its first ``share`` (by characters, a fair proxy for time)."""
    kept: list[str] = []
    end = 0
    for word in text.split():
        end = text.index(word, end) + len(word)
        if end > share * len(text):
            break
        kept.append(word)
    return " ".join(kept)
