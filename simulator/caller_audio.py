"""Caller audio for the load scenarios: German speech or WAV files as μ-law, pre-encoded into frames.

Encoding is done once per utterance, before any call starts: base64 of every 20 ms frame, so streaming two
hundred calls costs a string template per frame, nothing more.
"""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from simulator.twilio import FRAME_BYTES

FRAME_S = 0.02
RATE = 8000

# The JSON ``wire.media`` produces, as a template: same keys, same order, no spaces.
_MEDIA = (
    '{"event":"media","sequenceNumber":"%d","media":{"track":"inbound","chunk":"%d",'
    '"timestamp":"%d","payload":"%s"},"streamSid":"%s"}'
)


def _trim_and_level(samples: npt.NDArray[np.float64], level_db: float | None) -> npt.NDArray[np.float64]:
    """Cuts leading/trailing silence (10 ms windows under -45 dBFS), so the last frame sent is voiced."""
    n = 80
    usable = len(samples) // n * n
    if usable == 0:
        return samples
    windows = samples[:usable].reshape(-1, n)
    levels = 20 * np.log10(np.maximum(np.sqrt(np.mean(np.square(windows), axis=1)), 1e-9) / 32768)
    voiced = np.flatnonzero(levels > -45.0)
    if not len(voiced):
        return samples
    cut = samples[int(voiced[0]) * n : int(voiced[-1] + 1) * n]
    if level_db is None:
        return cut
    active = windows[voiced].ravel()
    rms = float(np.sqrt(np.mean(np.square(active))))
    return cut * (10 ** (level_db / 20) / max(rms / 32768, 1e-9))


def _to_ulaw(samples: npt.NDArray[np.float64]) -> bytes:
    from media.codec import array_to_ulaw

    return array_to_ulaw(np.clip(np.round(samples), -32768, 32767).astype(np.int16))


def speech_ulaw(text: str, *, level_db: float = -20.0) -> bytes:
    """German speech from eSpeak NG (``media.espeak``), trimmed to its voiced part, at ``level_db`` dBFS."""
    from media.espeak import synthesize_pcm16

    pcm = np.frombuffer(synthesize_pcm16(text), dtype="<i2").astype(np.float64)
    return _to_ulaw(_trim_and_level(pcm, level_db))


class WavError(ValueError):
    pass


def load_wav(path: Path, *, level_db: float | None = None) -> bytes:
    """A WAV file (PCM 8/16/24/32-bit, float32 or μ-law; any rate; channels mixed down) as 8 kHz μ-law,
    trimmed to its voiced part so that response latency counts from the last voiced frame."""
    data = path.read_bytes()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavError(f"{path}: not a RIFF/WAVE file")
    fmt: tuple[int, int, int, int] | None = None
    body: bytes | None = None
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        chunk = data[pos + 8 : pos + 8 + size]
        if cid == b"fmt ":
            tag, channels, rate = struct.unpack("<HHI", chunk[:8])
            bits = struct.unpack("<H", chunk[14:16])[0]
            if tag == 0xFFFE and len(chunk) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the real tag opens the GUID
                tag = struct.unpack("<H", chunk[24:26])[0]
            fmt = (tag, channels, rate, bits)
        elif cid == b"data":
            body = chunk
        pos += 8 + size + (size & 1)
    if fmt is None or body is None:
        raise WavError(f"{path}: no fmt or data chunk")
    tag, channels, rate, bits = fmt
    samples: npt.NDArray[np.float64]
    if tag == 7 and bits == 8:
        from media.codec import ulaw_to_array

        samples = ulaw_to_array(body).astype(np.float64)
    elif tag == 1 and bits == 16:
        samples = np.frombuffer(body[: len(body) // 2 * 2], dtype="<i2").astype(np.float64)
    elif tag == 1 and bits == 8:
        samples = (np.frombuffer(body, dtype=np.uint8).astype(np.float64) - 128) * 256
    elif tag == 1 and bits == 24:
        raw = np.frombuffer(body[: len(body) // 3 * 3], dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        ints = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
        samples = (np.where(ints & 0x800000, ints - (1 << 24), ints) / 256).astype(np.float64)
    elif tag == 1 and bits == 32:
        samples = np.frombuffer(body[: len(body) // 4 * 4], dtype="<i4").astype(np.float64) / 65536
    elif tag == 3 and bits == 32:
        samples = np.frombuffer(body[: len(body) // 4 * 4], dtype="<f4").astype(np.float64) * 32767
    else:
        raise WavError(f"{path}: unsupported WAV format (tag {tag}, {bits} bits)")
    if channels > 1:
        samples = samples[: len(samples) // channels * channels].reshape(-1, channels).mean(axis=1)
    if rate != RATE:
        import soxr

        samples = np.asarray(soxr.resample(samples, rate, RATE), dtype=np.float64)
    return _to_ulaw(_trim_and_level(samples, level_db))


def _payloads(ulaw: bytes) -> list[str]:
    """Base64 of each 20 ms frame (the last padded with silence, as Twilio never sends a partial frame)."""
    out = []
    for i in range(0, len(ulaw), FRAME_BYTES):
        frame = ulaw[i : i + FRAME_BYTES]
        out.append(base64.b64encode(frame + b"\xff" * (FRAME_BYTES - len(frame))).decode("ascii"))
    return out


SILENT_PAYLOAD = base64.b64encode(b"\xff" * FRAME_BYTES).decode("ascii")


@dataclass(frozen=True, slots=True)
class Speech:
    """Caller audio ready to stream: the μ-law and its frames pre-encoded."""

    ulaw: bytes
    payloads: tuple[str, ...]

    @classmethod
    def of(cls, ulaw: bytes) -> Speech:
        return cls(ulaw, tuple(_payloads(ulaw)))

    @property
    def seconds(self) -> float:
        return len(self.payloads) * FRAME_S
