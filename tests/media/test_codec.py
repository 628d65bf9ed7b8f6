"""The codec must match audioop bit for bit: Twilio, STT providers and our tests assume audioop's G.711."""

from __future__ import annotations

import audioop
import threading

import numpy as np
import pytest

from media.codec import (
    FRAME_BYTES,
    ULAW_SILENCE,
    array_to_ulaw,
    pcm16_power,
    pcm16_to_ulaw,
    table_decode,
    table_encode,
    ulaw_to_array,
    ulaw_to_pcm16,
)
from media.espeak import synthesize_pcm16, synthesize_ulaw
from media.resample import Resampler

ALL_PCM = np.arange(65536, dtype=np.uint16).view("<i2").tobytes()


def test_encode_matches_audioop_on_all_65536_samples() -> None:
    assert table_encode(ALL_PCM) == audioop.lin2ulaw(ALL_PCM, 2)  # the path without audioop (3.13+)
    assert pcm16_to_ulaw(ALL_PCM) == audioop.lin2ulaw(ALL_PCM, 2)


def test_decode_matches_audioop_on_all_256_codes() -> None:
    codes = bytes(range(256))
    assert table_decode(codes).tobytes() == audioop.ulaw2lin(codes, 2)
    assert ulaw_to_pcm16(codes) == audioop.ulaw2lin(codes, 2)
    assert ulaw_to_array(codes).tobytes() == audioop.ulaw2lin(codes, 2)


def test_array_encoding_equals_bytes_encoding() -> None:
    assert array_to_ulaw(np.frombuffer(ALL_PCM, dtype="<i2")) == pcm16_to_ulaw(ALL_PCM)


@pytest.mark.parametrize("with_audioop", [True, False])
def test_frame_power_is_the_exact_mean_square(with_audioop: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Levels decide speech and echo on every frame: the fast path must agree with the exact sum of squares
    to well under 0.001 dB, also for near-silent frames where an integer RMS would round to nothing."""
    if not with_audioop:
        monkeypatch.setattr("media.codec._AUDIOOP", None)
    rng = np.random.default_rng(7)
    frames = [np.zeros(FRAME_BYTES, dtype="<i2"), np.full(FRAME_BYTES, -32768, dtype="<i2")]
    frames += [np.array([1] + [0] * (FRAME_BYTES - 1), dtype="<i2")]
    frames += [rng.integers(-a, a + 1, FRAME_BYTES).astype("<i2") for a in (1, 3, 40, 1000, 32767)]
    for samples in frames:
        exact = float(np.mean(samples.astype(np.float64) ** 2))
        got = pcm16_power(samples.tobytes())
        assert got == pytest.approx(exact, rel=1e-4, abs=1e-12)
    assert pcm16_power(b"") == 0.0


def test_silence_constants() -> None:
    assert ulaw_to_pcm16(ULAW_SILENCE) == b"\0\0"
    assert pcm16_to_ulaw(b"\0\0") == ULAW_SILENCE
    assert FRAME_BYTES == 160


def test_odd_pcm_length_is_rejected() -> None:
    with pytest.raises(ValueError, match="even"):
        pcm16_to_ulaw(b"\0\0\0")


def test_streaming_resampler_matches_length_and_joins_frames() -> None:
    pcm = synthesize_pcm16("Guten Tag")
    up = Resampler(8000, 16000)
    chunks = [up.process(pcm[i : i + 320]) for i in range(0, len(pcm), 320)]
    out = b"".join(chunks) + up.flush()
    assert abs(len(out) - 2 * len(pcm)) <= 4  # exactly twice the samples, give or take the filter edges
    assert Resampler(8000, 8000).process(pcm) == pcm


def test_espeak_speaks_german_at_8khz() -> None:
    pcm = synthesize_pcm16("Guten Tag, wie kann ich Ihnen helfen?")
    seconds = len(pcm) / 2 / 8000
    assert 1.2 < seconds < 4.0
    assert np.abs(np.frombuffer(pcm, dtype="<i2")).max() > 5000
    assert (
        abs(len(synthesize_ulaw("Hallo")) * 2 - len(synthesize_pcm16("Hallo"))) < 400
    )  # eSpeak varies a little


def test_espeak_is_safe_from_several_threads() -> None:
    results: list[int] = []

    def speak() -> None:
        results.append(len(synthesize_pcm16("Eins zwei drei")))

    threads = [threading.Thread(target=speak) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4
    assert max(results) - min(results) < 400  # same words, same length within a few ms
