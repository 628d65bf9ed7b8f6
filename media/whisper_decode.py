"""One caller utterance through Whisper with an encoder window as short as the operator chooses.

faster-whisper pads every input to Whisper's 30 s window before the encoder runs, so two seconds of speech
cost as much encoding as thirty: on a two-core CPU the base model's encoder took 2.9 s of a 3.2 s decode
under load, 0.43 s for a 10 s window. CTranslate2's encoder takes any window length and the decoder attends
to whatever the encoder gives it, so a phone turn is encoded in a window of ``window_s`` (or the speech
plus a second, if longer) and decoded greedily in one ``generate`` call.

The window trades accuracy for speed; the base model saw only 30 s windows in training. With eSpeak's
formant voice as the caller (30 renderings of bench/local_stt.py's questions, load average ~4 on two shared
cores) the shorter windows looked costly:

    window  FAQ right  refused  wrong  median decode
    30 s    19/30      3        8      1.57 s
    20 s    17/30      3        10     0.88 s
    10 s    13/30      5        12     0.54 s

eSpeak is a poor stand-in for a person, though: half of its questions are misheard at any window. With
MBROLA's German voices (cut from recordings; ``python -m bench.local_stt --voice mb-de6``, idle machine)
the model understands the questions, and the window costs almost nothing: FAQ right 38/40 at 30 s and
37/40 at 20 s (de6 at 120, 140 and 165 words a minute, de2 at 140), word error 0.14 against 0.17, median
decode 1.35 s against 0.71 s. So the default is 20 s (``LOCAL_STT_WINDOW_S``): half a second off every
keyless turn for one question in forty. Speech longer than ``MAX_WINDOW_S`` less the margin
goes through faster-whisper's own segmenting loop, which handles any length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

FRAMES_PER_S: Final = 100
"""Whisper's mel frames: one every 10 ms."""

MAX_WINDOW_S: Final = 30.0
"""Whisper's own window: the encoder has positions for no more."""

MARGIN_S: Final = 1.0
"""Silence after the speech inside the window, as Whisper saw at the end of its training windows."""


@dataclass(frozen=True, slots=True)
class Decoded:
    text: str
    avg_logprob: float
    """Mean log-probability per token (faster-whisper's definition), the model's own confidence."""


class ShortWindowDecoder:
    """Built once per loaded model: the tokenizer, prompt tokens and suppressed tokens do not change."""

    def __init__(self, whisper: Any, *, language: str, prompt: str, window_s: float = MAX_WINDOW_S) -> None:
        from faster_whisper.tokenizer import Tokenizer  # type: ignore[import-untyped]
        from faster_whisper.transcribe import get_suppressed_tokens  # type: ignore[import-untyped]

        self._whisper = whisper
        self.window_s = min(window_s, MAX_WINDOW_S)
        tokenizer = Tokenizer(
            whisper.hf_tokenizer, whisper.model.is_multilingual, task="transcribe", language=language
        )
        self._tokenizer = tokenizer
        previous = [tokenizer.sot_prev, *tokenizer.encode(" " + prompt.strip())] if prompt.strip() else []
        self._prompt = [*previous, *tokenizer.sot_sequence, tokenizer.no_timestamps]
        self._suppress = get_suppressed_tokens(tokenizer, [-1])

    @staticmethod
    def fits(speech_s: float) -> bool:
        return speech_s + MARGIN_S <= MAX_WINDOW_S

    def decode(self, samples: np.ndarray[Any, Any], max_new_tokens: int) -> Decoded:
        """``samples``: 16 kHz mono float speech that ``fits``. Greedy, no timestamps, no fallback."""
        speech_s = len(samples) / 16000
        window_s = min(max(self.window_s, speech_s + MARGIN_S), MAX_WINDOW_S)
        window = 2 * math.ceil(window_s * FRAMES_PER_S / 2)  # the encoder's first convolution halves it
        mel = self._whisper.feature_extractor(samples)
        features = np.zeros((mel.shape[0], window), dtype=np.float32)
        used = min(window, mel.shape[1])
        features[:, :used] = mel[:, :used]
        encoded = self._whisper.encode(features)
        result = self._whisper.model.generate(
            encoded,
            [self._prompt],
            beam_size=1,
            max_length=len(self._prompt) + max_new_tokens,
            return_scores=True,
            suppress_blank=True,
            suppress_tokens=self._suppress,
        )[0]
        tokens = result.sequences_ids[0]
        words = [t for t in tokens if t < self._tokenizer.eot]
        # faster-whisper's avg_logprob: the length-normalised score times the length, over length + 1.
        avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
        return Decoded(self._tokenizer.decode(words).strip(), float(avg_logprob))
