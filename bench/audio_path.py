"""CPU cost of the inbound audio path per call: codec + VAD + echo gate + turn detection.

Run: ``python -m bench.audio_path`` (or ``python bench/audio_path.py``). Not a test: timings depend on the
machine. Audio is real German speech from eSpeak NG mixed with line noise, framed as Twilio sends it, so
the VAD and the detector take the same branches as on a call. A listening call is 50 frames per second; the
"% of one core" column is the time per 20 ms frame divided by 20 ms.
"""

from __future__ import annotations

import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from media.codec import FRAME_BYTES, array_to_ulaw, pcm16_to_ulaw, ulaw_to_array, ulaw_to_pcm16
from media.echo import EchoGate, level_db
from media.espeak import synthesize_pcm16
from media.recording import StereoRecorder
from media.turns import TurnConfig, TurnDetector
from media.vad import WebRtcVad

FRAME_US = 20_000.0
TARGET_PERCENT = 0.5


def _speech_with_noise() -> bytes:
    """~20 s: speech turns separated by pauses, under -50 dBFS noise, as μ-law."""
    rng = np.random.default_rng(0)
    parts: list[np.ndarray] = []
    for text in [
        "Guten Tag, ich habe eine Frage zu meiner Rechnung.",
        "Die Kundennummer ist vier fünf sechs sieben acht.",
        "Ja, genau. Und bitte schicken Sie mir eine Kopie per E-Mail.",
        "Nein, das ist alles. Vielen Dank und auf Wiederhören.",
    ]:
        parts.append(np.frombuffer(synthesize_pcm16(text), dtype="<i2").astype(np.float64) * 0.5)
        parts.append(np.zeros(8000 * 2))
    audio = np.concatenate(parts)
    audio += rng.standard_normal(len(audio)) * 32768 * 10 ** (-50 / 20)
    usable = len(audio) // FRAME_BYTES * FRAME_BYTES
    return array_to_ulaw(np.clip(audio[:usable], -32768, 32767).astype(np.int16))


def _per_frame_us(step: Callable[[bytes], object], frames: list[bytes], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        for f in frames:
            step(f)
        best = min(best, (time.process_time() - start) / len(frames) * 1e6)
    return best


def _recorder_us(frames: list[bytes]) -> float:
    """The stereo call recording's cost per caller frame, with a 100 ms bot chunk every fifth frame."""
    bot_chunk = frames[0] * 5
    with tempfile.TemporaryDirectory() as tmp, StereoRecorder(Path(tmp) / "bench.wav") as rec:
        count = iter(range(10**9))

        def step(f: bytes) -> None:
            rec.caller(f)
            if next(count) % 5 == 0:
                rec.bot(bot_chunk)

        return _per_frame_us(step, frames)


def main() -> None:
    ulaw = _speech_with_noise()
    frames = [ulaw[i : i + FRAME_BYTES] for i in range(0, len(ulaw), FRAME_BYTES)] * 5
    pcm_frames = [ulaw_to_pcm16(f) for f in frames]
    rows: list[tuple[str, float]] = []

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import audioop

        rows.append(("baseline: audioop.ulaw2lin", _per_frame_us(lambda f: audioop.ulaw2lin(f, 2), frames)))
    except ImportError:
        pass
    rows.append(("codec: ulaw_to_pcm16 (audioop if present)", _per_frame_us(ulaw_to_pcm16, frames)))
    pcm_iter = iter(pcm_frames * 10)
    rows.append(
        (
            "codec: pcm16_to_ulaw (speaking path)",
            _per_frame_us(lambda _f: pcm16_to_ulaw(next(pcm_iter)), frames),
        )
    )

    vad = WebRtcVad(2)
    pcm_iter = iter(pcm_frames * 10)
    rows.append(
        ("vad: WebRtcVad(2).is_speech", _per_frame_us(lambda _f: vad.is_speech(next(pcm_iter)), frames))
    )

    gate = EchoGate()
    counter = iter(range(10**9))
    rows.append(
        (
            "echo: level + gate (no bot audio)",
            _per_frame_us(
                lambda f: gate.is_echo(next(counter), level_db(ulaw_to_array(f).astype(np.float32))), frames
            ),
        )
    )

    listening = TurnDetector(TurnConfig())
    listen_us = _per_frame_us(listening.push, frames)
    rows.append(("TOTAL listening: TurnDetector.push", listen_us))

    speaking = TurnDetector(TurnConfig())
    speaking.bot_speaking = True
    reference = iter(frames * 10)

    def push_with_reference(f: bytes) -> object:
        speaking.play_reference(next(reference))
        return speaking.push(f)

    speak_us = _per_frame_us(push_with_reference, frames)
    rows.append(("TOTAL bot speaking: push + play_reference", speak_us))

    rows.append(("recording: StereoRecorder (bot every 5th frame)", _recorder_us(frames)))

    audio_s = len(frames) * 0.02
    print(
        f"audio: {audio_s:.0f} s of German speech + -50 dBFS noise, 20 ms frames, best of 3, process CPU time"
    )
    print(f"{'stage':44s} {'µs/frame':>9s} {'% core/call':>12s} {'calls/core':>11s} {'× baseline':>10s}")
    baseline = rows[0][1] if rows[0][0].startswith("baseline") else None
    for name, us in rows:
        percent = us / FRAME_US * 100
        ratio = f"{us / baseline:10.1f}" if baseline else f"{'-':>10s}"
        print(f"{name:44s} {us:9.2f} {percent:11.3f}% {100 / percent:11.0f} {ratio}")
    verdict = "meets" if listen_us / FRAME_US * 100 <= TARGET_PERCENT else "MISSES"
    percent = listen_us / FRAME_US * 100
    print(f"listening call: {percent:.3f} % of one core, {verdict} the {TARGET_PERCENT} % target")


if __name__ == "__main__":
    main()
