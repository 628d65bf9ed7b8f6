"""Stereo call recording (caller left, bot right), streamed to a WAV file while the call runs.

The caller's frames are the clock: Twilio sends one 20 ms frame every 20 ms for the whole call, silence
included, so sample N of the left channel happened N/8000 s after the stream started. Bot audio is placed at
the caller clock when it is sent, or right after the previous bot audio if that is still ahead of the clock
(paced playout keeps a short lead buffered at the far end), so the two channels cannot drift apart and bot
chunks never overlap. Bot audio still ahead of the clock when the far end is told to ``clear`` was never
heard and is dropped; so is any left over at ``close``.

Samples stay μ-law in memory (one byte each) and are decoded a block at a time, so a frame costs a bytearray
append; about one write per second per call reaches the disk, and a crash leaves a WAV whose data is intact
up to the last block.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path
from typing import BinaryIO, Final

import numpy as np

from media.codec import ulaw_to_array

SAMPLE_RATE: Final = 8000
BLOCK_SAMPLES: Final = SAMPLE_RATE
"""Caller samples gathered before a write: one second keeps syscalls rare and the loss on a crash small."""
_SILENCE: Final = 0xFF  # μ-law digital zero
_HEADER: Final = struct.Struct("<4sI4s4sIHHIIHH4sI")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")


def recording_path(directory: Path, call_sid: str) -> Path:
    """Where a call's recording lives; the console serves it from the same place."""
    return directory / f"{_SAFE_NAME.sub('_', call_sid)[:100] or 'call'}.wav"


def _header(data_bytes: int) -> bytes:
    channels, width = 2, 2
    return _HEADER.pack(
        b"RIFF",
        36 + data_bytes,
        b"WAVE",
        b"fmt ",
        16,
        1,
        channels,
        SAMPLE_RATE,
        SAMPLE_RATE * channels * width,
        channels * width,
        8 * width,
        b"data",
        data_bytes,
    )


class StereoRecorder:
    """One per call. ``caller`` per inbound frame, ``bot`` per chunk sent, ``close`` once at the end."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file: BinaryIO | None = path.open("wb")
        self._file.write(_header(0))
        self._caller = bytearray()
        """Caller μ-law not yet written; starts at sample ``_written``."""
        self._bot = bytearray()
        """Bot μ-law from sample ``_written`` on; may run ahead of the caller clock."""
        self._written = 0

    @property
    def clock(self) -> int:
        """Caller samples received so far: the recording's time axis."""
        return self._written + len(self._caller)

    @property
    def samples_written(self) -> int:
        return self._written

    def caller(self, ulaw: bytes) -> None:
        if self._file is None:
            return
        self._caller += ulaw
        if len(self._caller) >= BLOCK_SAMPLES:
            self._flush(len(self._caller))

    def bot(self, ulaw: bytes) -> None:
        if self._file is None:
            return
        gap = self.clock - (self._written + len(self._bot))
        if gap > 0:  # the bot was silent for a while: resume at the current caller time
            self._bot += bytes([_SILENCE]) * gap
        self._bot += ulaw

    def clear(self) -> None:
        """The far end dropped its buffer: bot audio ahead of the clock was never played."""
        del self._bot[max(0, self.clock - self._written) :]

    def close(self) -> None:
        """Writes what the caller clock covers and fixes the header. Idempotent."""
        if self._file is None:
            return
        try:
            if self._caller:
                self._flush(len(self._caller))
        finally:
            self._file.close()
            self._file = None
            self._caller.clear()
            self._bot.clear()

    def discard(self) -> None:
        """The caller objected: stop at once and delete everything recorded so far. Idempotent."""
        self.close()
        self.path.unlink(missing_ok=True)

    @property
    def closed(self) -> bool:
        return self._file is None

    def _flush(self, n: int) -> None:
        assert self._file is not None
        bot = self._bot[:n]
        if len(bot) < n:
            bot += bytes([_SILENCE]) * (n - len(bot))
        frames = np.empty((n, 2), dtype="<i2")
        frames[:, 0] = ulaw_to_array(bytes(self._caller[:n]))
        frames[:, 1] = ulaw_to_array(bytes(bot))
        self._file.write(frames.tobytes())
        del self._caller[:n]
        del self._bot[:n]
        self._written += n
        self._file.seek(0)  # keep the header true, so a crash leaves a playable file
        self._file.write(_header(self._written * 4))
        self._file.seek(0, 2)

    def __enter__(self) -> StereoRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
