from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from media.codec import array_to_ulaw
from media.recording import BLOCK_SAMPLES, StereoRecorder, recording_path


def tone(n: int, value: int) -> bytes:
    return array_to_ulaw(np.full(n, value, dtype=np.int16))


def read(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 2, 8000)
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)


def test_bot_audio_is_placed_on_the_caller_clock(tmp_path: Path) -> None:
    path = tmp_path / "r.wav"
    rec = StereoRecorder(path)
    for _ in range(10):  # 200 ms of caller
        rec.caller(tone(160, 1000))
    rec.bot(tone(800, -2000))  # 100 ms of bot, sent at 200 ms
    for _ in range(15):
        rec.caller(tone(160, 0))
    rec.close()
    frames = read(path)
    assert len(frames) == 25 * 160
    assert np.all(frames[:1600, 0] > 900)
    assert np.all(frames[:1600, 1] == 0)
    assert np.all(frames[1600:2400, 1] < -1900)
    assert np.all(frames[2400:, 1] == 0)


def test_bot_chunks_sent_ahead_follow_each_other_without_overlap(tmp_path: Path) -> None:
    path = tmp_path / "r.wav"
    with StereoRecorder(path) as rec:
        rec.caller(tone(160, 0))
        rec.bot(tone(320, 3000))
        rec.bot(tone(320, -3000))  # sent at once: queued behind the first chunk, not on top of it
        for _ in range(10):
            rec.caller(tone(160, 0))
    frames = read(path)
    assert np.all(frames[160:480, 1] > 2900)
    assert np.all(frames[480:800, 1] < -2900)


def test_clear_drops_bot_audio_that_was_never_played(tmp_path: Path) -> None:
    path = tmp_path / "r.wav"
    with StereoRecorder(path) as rec:
        rec.bot(tone(1600, 3000))  # 200 ms queued
        rec.caller(tone(800, 0))  # 100 ms later the caller barges in
        rec.clear()
        rec.caller(tone(1600, 0))
    frames = read(path)
    assert np.all(frames[:800, 1] > 2900)
    assert np.all(frames[800:, 1] == 0)


def test_written_in_blocks_with_a_valid_header_while_running(tmp_path: Path) -> None:
    path = tmp_path / "r.wav"
    rec = StereoRecorder(path)
    for _ in range(BLOCK_SAMPLES // 160 + 1):
        rec.caller(tone(160, 500))
    assert rec.samples_written >= BLOCK_SAMPLES
    assert len(read(path)) == rec.samples_written  # a crash now would leave a playable file
    rec.close()
    rec.close()  # idempotent
    rec.caller(tone(160, 0))  # after close: ignored, no error
    assert len(read(path)) == BLOCK_SAMPLES + 160


def test_recording_path_cannot_escape_the_directory(tmp_path: Path) -> None:
    assert recording_path(tmp_path, "../../etc/passwd").parent == tmp_path
    assert recording_path(tmp_path, "CA123").name == "CA123.wav"
