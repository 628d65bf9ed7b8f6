"""German speech from the eSpeak NG library shipped by the ``espeakng-loader`` wheel, via ctypes.

Why eSpeak: it needs no network, no model download and no system package, so tests can generate real
German speech at run time and a local TTS adapter can run offline. Its voice is robotic, but it has the
spectral and temporal structure of speech (voiced/unvoiced phones, pauses), which is what VAD and
turn-taking tests need.

eSpeak NG keeps global state and is not re-entrant: one process-wide lock serialises initialisation, voice
selection and synthesis. Synthesis is CPU-bound (roughly 20-50x faster than real time); async callers
should run it in a worker thread (``asyncio.to_thread``). eSpeak carries a little state from one utterance to
the next, so the same text can come out a few samples different depending on what was spoken before; the
same sequence of calls in a fresh process gives the same bytes.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Final

import numpy as np
import soxr

from media.codec import pcm16_to_ulaw
from media.errors import ProviderError
from media.speech import SAMPLE_RATE

_AUDIO_OUTPUT_SYNCHRONOUS: Final = 2
_POS_CHARACTER: Final = 1
_CHARS_UTF8: Final = 1
_PARAM_RATE: Final = 1
_PARAM_VOLUME: Final = 2
_PARAM_PITCH: Final = 3
_EE_OK: Final = 0

# int callback(short *wav, int numsamples, espeak_EVENT *events); returning 0 means "continue".
_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

_lock: Final = threading.Lock()


class _Engine:
    """The loaded library plus the per-synthesis sample sink its C callback appends to."""

    def __init__(self) -> None:
        import espeakng_loader  # imported lazily: loading the .so costs ~50 ms and most processes never speak

        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self.lib.espeak_Initialize.restype = ctypes.c_int
        self.lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self.lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_SetVoiceByName.restype = ctypes.c_int
        self.lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self.lib.espeak_SetParameter.restype = ctypes.c_int
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p,
        ]  # fmt: skip
        self.lib.espeak_Synth.restype = ctypes.c_int
        data = espeakng_loader.get_data_path().encode()
        rate = self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, 0)
        if rate <= 0:
            raise ProviderError("tts", f"espeak-ng failed to initialise (data at {data!r})", retryable=False)
        self.native_rate: int = rate
        self.chunks: list[bytes] = []
        # Keep a reference: ctypes frees the trampoline when the Python object dies, and C would call garbage.
        self._callback = _SynthCallback(self._on_samples)
        self.lib.espeak_SetSynthCallback(self._callback)

    def _on_samples(self, wav: ctypes._Pointer[ctypes.c_short], count: int, _events: int | None) -> int:
        if wav and count > 0:
            self.chunks.append(ctypes.string_at(wav, count * 2))
        return 0

    def synthesize(self, text: str, voice: str, rate_wpm: int, pitch: int) -> bytes:
        if self.lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
            raise ProviderError("tts", f"espeak-ng has no voice {voice!r}", retryable=False)
        self.lib.espeak_SetParameter(_PARAM_RATE, rate_wpm, 0)
        self.lib.espeak_SetParameter(_PARAM_PITCH, pitch, 0)
        self.lib.espeak_SetParameter(_PARAM_VOLUME, 100, 0)
        encoded = text.encode("utf-8") + b"\0"
        self.chunks = []
        status = self.lib.espeak_Synth(encoded, len(encoded), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if status != _EE_OK:
            raise ProviderError("tts", f"espeak-ng synthesis failed with status {status}", retryable=False)
        return b"".join(self.chunks)


_engine: _Engine | None = None


def _get_engine() -> _Engine:
    global _engine
    if _engine is None:
        _engine = _Engine()
    return _engine


def synthesize_native(
    text: str, voice: str = "de", rate_wpm: int = 160, pitch: int = 50
) -> tuple[bytes, int]:
    """PCM16 at eSpeak's own rate (22050 Hz), for callers that resample themselves. Returns (pcm, rate)."""
    with _lock:
        engine = _get_engine()
        return engine.synthesize(text, voice, rate_wpm, pitch), engine.native_rate


def synthesize_pcm16(text: str, voice: str = "de", rate_wpm: int = 160, pitch: int = 50) -> bytes:
    """Mono 8 kHz little-endian PCM16 of ``text``.

    ``voice`` is an eSpeak voice name, optionally with a variant ("de", "de+f3" for a female-sounding
    variant); ``pitch`` is eSpeak's 0..100 base pitch, which tests vary to tell caller and bot apart.
    The leading/trailing silence eSpeak adds is kept: it is short and callers that care trim it.
    """
    native, rate = synthesize_native(text, voice, rate_wpm, pitch)
    if not native:
        return b""
    samples = np.frombuffer(native, dtype="<i2")
    resampled = soxr.resample(samples, rate, SAMPLE_RATE, quality="HQ")
    return np.asarray(resampled, dtype="<i2").tobytes()


def synthesize_ulaw(text: str, voice: str = "de", rate_wpm: int = 160, pitch: int = 50) -> bytes:
    """Headerless 8 kHz μ-law, the format Twilio plays."""
    return pcm16_to_ulaw(synthesize_pcm16(text, voice, rate_wpm, pitch))
