"""Test-time telephone audio: real German speech, silence, noise, coughs and echo, as Twilio would send it.

Everything is 8 kHz μ-law bytes, because that is what crosses the wire; ``frames`` cuts it into the 160-byte
(20 ms) payloads of Twilio ``media`` messages. Speech comes from eSpeak NG (``media.espeak``) at run time,
so no audio files live in the repository. Levels are in dBFS of RMS over the active part, so "-20" is a
typical caller on a phone line and "-50" is line hiss.

Random sources take a ``seed`` so a failing test fails the same way twice.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from media.codec import FRAME_BYTES, array_to_ulaw, ulaw_to_array
from media.espeak import synthesize_pcm16

RATE = 8000
SAMPLES_PER_MS = RATE // 1000
BACKCHANNELS = ("ja", "mhm", "genau", "okay", "aha")
"""German backchannels a caller drops while the bot speaks; none of them is a turn."""

Samples = npt.NDArray[np.float64]


def to_samples(ulaw: bytes) -> Samples:
    return ulaw_to_array(ulaw).astype(np.float64)


def to_ulaw(samples: Samples) -> bytes:
    return array_to_ulaw(np.clip(np.round(samples), -32768, 32767).astype(np.int16))


def rms_dbfs(samples: Samples) -> float:
    rms = float(np.sqrt(np.mean(np.square(samples)))) if len(samples) else 0.0
    return float(20 * np.log10(max(rms, 1e-9) / 32768))


def active_mask(samples: Samples, floor_db: float = -45.0, frame_ms: int = 10) -> npt.NDArray[np.bool_]:
    """Per ``frame_ms`` window: is the clean signal above ``floor_db``? Ground truth for clean speech only."""
    n = frame_ms * SAMPLES_PER_MS
    usable = len(samples) // n * n
    windows = samples[:usable].reshape(-1, n)
    levels = 20 * np.log10(np.maximum(np.sqrt(np.mean(np.square(windows), axis=1)), 1e-9) / 32768)
    return np.asarray(levels > floor_db)


def speech_bounds_ms(ulaw: bytes, floor_db: float = -45.0) -> tuple[int, int]:
    """First and last 10 ms window of clean audio above ``floor_db``: where a perfect VAD would cut."""
    mask = active_mask(to_samples(ulaw), floor_db)
    idx = np.flatnonzero(mask)
    if not len(idx):
        return (0, 0)
    return int(idx[0]) * 10, int(idx[-1] + 1) * 10


@functools.lru_cache(maxsize=256)
def _speech(text: str, voice: str, rate_wpm: int, pitch: int) -> bytes:
    return synthesize_pcm16(text, voice=voice, rate_wpm=rate_wpm, pitch=pitch)


def german_speech_ulaw(
    text: str,
    *,
    level_db: float = -20.0,
    voice: str = "de",
    rate_wpm: int = 160,
    pitch: int = 50,
    trim: bool = True,
    fresh: bool = False,
) -> bytes:
    """``text`` spoken in German at ``level_db`` dBFS (RMS of the active part), 8 kHz μ-law.

    ``trim`` cuts eSpeak's own leading and trailing silence, so the speech starts at byte 0 and ends at the
    last byte: tests then know the ground truth boundaries from the offsets they place it at.
    Results are cached per process (synthesis of a sentence takes ~10 ms, tests reuse a few phrases);
    ``fresh`` synthesizes anew. eSpeak NG renders the same text slightly differently on each call (lengths
    vary by about 0.5 %, whatever was synthesized before), so a cached rendering is one draw of several.
    """
    pcm = synthesize_pcm16(text, voice, rate_wpm, pitch) if fresh else _speech(text, voice, rate_wpm, pitch)
    return speech_at_level(np.frombuffer(pcm, dtype="<i2").astype(np.float64), level_db, trim=trim)


def speech_at_level(samples: Samples, level_db: float, *, trim: bool = True) -> bytes:
    """Clean 8 kHz speech as μ-law at ``level_db`` dBFS over its active part, cut to it when ``trim``."""
    mask = active_mask(samples)
    if trim and mask.any():
        idx = np.flatnonzero(mask)
        samples = samples[int(idx[0]) * 80 : int(idx[-1] + 1) * 80]
        mask = active_mask(samples)
    active = samples[: len(mask) * 80].reshape(-1, 80)[mask].ravel()
    gain = 10 ** ((level_db - rms_dbfs(active)) / 20) if len(active) else 1.0
    return to_ulaw(samples * gain)


def silence_ulaw(ms: int) -> bytes:
    return b"\xff" * (ms * SAMPLES_PER_MS)


def noise_ulaw(ms: int, level_db: float = -50.0, *, seed: int = 0, color: str = "pink") -> bytes:
    """Stationary line/background noise: "white" hiss or "pink" (1/f, closer to room and street noise)."""
    rng = np.random.default_rng(seed)
    n = ms * SAMPLES_PER_MS
    white = rng.standard_normal(n)
    if color == "pink":
        spectrum = np.fft.rfft(white)
        spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1.0))
        white = np.fft.irfft(spectrum, n)
    elif color != "white":
        raise ValueError(f"unknown noise colour {color!r}")
    return to_ulaw(
        white / max(float(np.sqrt(np.mean(np.square(white)))), 1e-12) * 32768 * 10 ** (level_db / 20)
    )


def cough_ulaw(ms: int = 250, level_db: float = -12.0, *, seed: int = 1) -> bytes:
    """A cough or clap: a loud broadband burst with a fast attack and exponential decay."""
    rng = np.random.default_rng(seed)
    n = ms * SAMPLES_PER_MS
    envelope = np.exp(-np.arange(n) / (n / 4))
    burst = rng.standard_normal(n) * envelope
    burst = np.convolve(burst, np.ones(3) / 3, mode="same")  # a little low-pass, as through a phone mic
    peak_rms = float(np.sqrt(np.mean(np.square(burst[: n // 4]))))
    return to_ulaw(burst / max(peak_rms, 1e-12) * 32768 * 10 ** (level_db / 20))


def echo_of(bot_ulaw: bytes, *, delay_ms: int, attenuation_db: float, seed: int = 2) -> bytes:
    """The bot's own audio coming back over a speakerphone: delayed, attenuated, band-limited and smeared.

    The acoustic path is a short random decaying impulse response (a small room), so the echo is not a
    bit-exact copy; the result is ``delay_ms`` longer than the input.
    """
    rng = np.random.default_rng(seed)
    taps = rng.standard_normal(40) * np.exp(-np.arange(40) / 8.0)
    taps[0] = 1.0
    taps /= np.sqrt(np.sum(np.square(taps)))
    path = np.convolve(to_samples(bot_ulaw), taps)[: len(bot_ulaw)]
    delayed = np.concatenate([np.zeros(delay_ms * SAMPLES_PER_MS), path])
    return to_ulaw(delayed * 10 ** (-attenuation_db / 20))


@dataclass(frozen=True)
class Track:
    """One source in a ``mix``: μ-law audio starting ``at_ms`` into the mix, scaled by ``gain_db``."""

    ulaw: bytes
    at_ms: int = 0
    gain_db: float = 0.0


def mix(*tracks: Track | bytes, length_ms: int | None = None) -> bytes:
    """Sum tracks as a microphone would (linear PCM, clipped), re-encoded to μ-law like a phone line.

    Plain ``bytes`` start at 0 ms. The result lasts until the last track ends unless ``length_ms`` is given.
    """
    placed = [t if isinstance(t, Track) else Track(t) for t in tracks]
    end = max((t.at_ms * SAMPLES_PER_MS + len(t.ulaw) for t in placed), default=0)
    total = end if length_ms is None else length_ms * SAMPLES_PER_MS
    out = np.zeros(max(total, end))
    for t in placed:
        start = t.at_ms * SAMPLES_PER_MS
        out[start : start + len(t.ulaw)] += to_samples(t.ulaw) * 10 ** (t.gain_db / 20)
    return to_ulaw(out[:total])


def frames(ulaw: bytes, size: int = FRAME_BYTES) -> Iterator[bytes]:
    """Cut into Twilio-sized payloads; a short last frame is padded with μ-law silence, as Twilio never
    sends a partial frame."""
    for i in range(0, len(ulaw), size):
        chunk = ulaw[i : i + size]
        yield chunk + b"\xff" * (size - len(chunk))


def duration_ms(ulaw: bytes) -> int:
    return len(ulaw) // SAMPLES_PER_MS
