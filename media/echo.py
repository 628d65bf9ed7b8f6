"""Tells the bot's own voice coming back over the caller's line from the caller speaking.

A speakerphone (or a badly isolated handset) returns the bot's audio delayed and attenuated. Without this
gate, the VAD hears the bot and the bot interrupts itself (pipecat #1771, call-center-ai #374).

Why an energy-envelope gate instead of an adaptive echo canceller: a linear canceller (NLMS / frequency-
domain) over a 300 ms echo path costs tens of µs per frame in numpy and must converge before it helps;
what the turn detector needs is one bit per frame, "is there more energy than the bot's echo explains?".
So the gate keeps per-frame energies of the reference (what we sent) on the inbound stream's timeline,
finds the echo delay by correlating the two log-energy envelopes, learns the echo return loss (ERL) from
frames the reference explains, and calls a frame *echo* when its energy stays below the predicted echo level
plus a margin. Caller speech overlapping the bot shows up at least in the gaps between the bot's syllables
and words, so a real interruption still accumulates voiced frames, just fewer of them.

The trade-off: a caller much quieter than the echo (ERL of 6 dB and a whispering caller) is not heard
over the bot until the bot pauses. Before the delay is known (the first ~300 ms of bot audio), the gate
falls back to the loudest reference frame anywhere in the delay window at the worst-case ERL, which
rejects echo at the price of needing a caller about as loud as the bot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from media.codec import FRAME_BYTES, pcm16_power, ulaw_to_pcm16

_FLOOR_DB = -90.0
_QUIET_DB = -60.0  # a line below this throughout carries neither a caller nor an echo worth learning from
_QUIET_ERL_DB = -40.0  # an ERL this low already lets any caller through over the bot


@dataclass(frozen=True)
class EchoConfig:
    """Defaults cover the brief's echo range (0-300 ms late, 6-30 dB down) with measured headroom."""

    max_delay_ms: int = 400
    """Longest reference-to-echo delay searched: 300 ms acoustic/network plus one jitter-buffer step."""
    worst_erl_db: float = -6.0
    """Echo return loss assumed until learnt; a speakerphone rarely returns less than 6 dB below."""
    margin_db: float = 6.0
    """How far above the predicted echo a frame must be to count as the caller: covers the spread of the
    per-frame echo level around the median (measured ±4 dB through μ-law twice and a room response)."""
    active_db: float = -50.0
    """Reference frames quieter than this are the bot's own pauses and say nothing about the echo path."""
    window_frames: int = 50
    """One second of envelope to correlate: enough syllables for a clear peak, short enough to follow a
    changing delay."""
    min_frames: int = 15
    """Reference frames behind each candidate delay before an estimate is trusted: with the 400 ms window,
    the first estimate comes ~550 ms into the bot's speech; until then the worst-case ERL applies."""
    min_correlation: float = 0.6


class EchoGate:
    """Per-call echo bookkeeping on the inbound stream's frame clock (frame ``i`` is ``20i..20i+20`` ms)."""

    _RING = 256  # frames (5.1 s): delay window + the session's ≤200 ms lead + the correlation window
    _SEARCH_FRAMES = 150  # 3 s of bot audio searched for a delay at the quick pace

    def __init__(self, config: EchoConfig | None = None) -> None:
        self.config = config or EchoConfig()
        self._max_lag = self.config.max_delay_ms // 20
        # Plain lists, not arrays: every frame writes one slot and reads a few, and a numpy scalar access
        # costs more than the whole list operation; ``_estimate`` takes arrays of them twice a second.
        self._ref: list[float] = [_FLOOR_DB] * self._RING
        self._inb: list[float] = [_FLOOR_DB] * self._RING
        self._ref_end = 0  # first frame index with no reference yet
        self._ref_carry = b""
        self._frame = 0  # inbound frames seen
        self._active_run = 0
        self.delay_frames: int | None = None
        self.erl_db: float = self.config.worst_erl_db
        self._since_estimate = 0
        self._lags = np.arange(self._max_lag + 1)
        self._row_cache: dict[int, npt.NDArray[np.intp]] = {}

    def add_reference(self, ulaw: bytes, now_frame: int) -> None:
        """Place bot audio where the far end will play it: after what is queued, never before now.

        A new burst after a pause starts at ``now_frame``; audio sent ahead of real time queues behind the
        previous reference exactly as it queues in Twilio's playout buffer.
        """
        data = self._ref_carry + ulaw
        whole = len(data) // FRAME_BYTES * FRAME_BYTES
        self._ref_carry = data[whole:]
        if not whole:
            return
        pcm = ulaw_to_pcm16(data[:whole])
        step = 2 * FRAME_BYTES
        start = max(self._ref_end, now_frame)
        ring, ref = self._RING, self._ref
        for i in range(self._ref_end, min(start, self._ref_end + ring)):  # silence between bursts
            ref[i % ring] = _FLOOR_DB
        at = start
        for i in range(0, len(pcm), step):
            ref[at % ring] = pcm16_level_db(pcm[i : i + step])
            at += 1
        self._ref_end = at

    def drop_unplayed(self, now_frame: int) -> None:
        """Forget reference after ``now_frame``: the far end's buffer was cleared, that audio never plays."""
        if self._ref_end > now_frame:
            for i in range(max(now_frame, self._ref_end - self._RING), self._ref_end):
                self._ref[i % self._RING] = _FLOOR_DB
            self._ref_end = now_frame
        self._ref_carry = b""

    def is_echo(self, frame_index: int, level_db: float) -> bool:
        """Record the inbound frame's level and say whether the bot's echo accounts for it.

        Frames must come in order; ``level_db`` is the frame's mean power in dBFS.
        """
        self._inb[frame_index % self._RING] = level_db
        if frame_index >= self._ref_end:  # the slot still holds reference from a lap of the ring ago
            self._ref[frame_index % self._RING] = _FLOOR_DB
        self._frame = frame_index + 1
        lo = frame_index - self._max_lag
        if self._ref_end <= lo:  # no bot audio within the delay window: nothing can be echo
            self._active_run = 0
            return False
        self._active_run += 1
        self._since_estimate += 1
        # Every candidate delay needs its own frames of bot audio before the bounds below are safe. Once a
        # delay is known, re-estimating twice a second follows a changing path well enough; every 200 ms
        # made the gate the costliest thing a speaking call did per frame. The quick pace is kept only for
        # the first seconds of each stretch of bot audio: a line with no echo at all (most handsets) never
        # yields a delay, and would otherwise pay it for every second the bot talks.
        searching = self.delay_frames is None and self._active_run < self._SEARCH_FRAMES
        every = 10 if searching else 25
        if self._since_estimate >= every and self._active_run >= self._max_lag + self.config.min_frames // 2:
            self._estimate()
        if self.delay_frames is None:
            predicted = self._loudest(lo, frame_index) + self.erl_db
        else:
            at = frame_index - self.delay_frames
            predicted = self._loudest(at - 1, at + 1) + self.erl_db
        return level_db <= predicted + self.config.margin_db

    def _loudest(self, first: int, last: int) -> float:
        """Loudest reference level in frames ``first..last`` (inclusive, fewer than a ring apart)."""
        a, b = first % self._RING, last % self._RING
        if a <= b:
            return max(self._ref[a : b + 1])
        return max(max(self._ref[a:]), max(self._ref[: b + 1]))

    def _estimate(self) -> None:
        """Find the lag whose reference envelope best explains the last second of inbound levels.

        Runs twice a second per speaking call, so it avoids numpy's slow conveniences (``median``,
        ``mean``, index arithmetic rebuilt each time): a sum over the count, the sorted row already at
        hand, the lagged reference rows taken from one window by a cached index. The same numbers.
        """
        self._since_estimate = 0
        n = min(self.config.window_frames, self._active_run)
        end = self._frame
        heard = self._last(self._inb, end, n)
        if self.erl_db <= _QUIET_ERL_DB and max(heard) < _QUIET_DB:
            # A quiet line with the echo already known to be faint: the estimate could only lower the ERL
            # further, which changes no verdict, or find a delay in noise. Most calls are like this most of
            # the time the bot talks (a handset, a caller listening), so it is the common case to skip.
            return
        inbound = np.array(heard)
        window = np.array(self._last(self._ref, end, n + self._max_lag))
        ref = window[self._rows(n)]
        active = ref > self.config.active_db
        ref_c = ref - ref.sum(axis=1, keepdims=True) / n
        inb_c = inbound - inbound.sum() / n
        denom = np.sqrt(np.einsum("ij,ij->i", ref_c, ref_c) * float(inb_c @ inb_c)) + 1e-9
        corr = (ref_c @ inb_c) / denom
        best = int(np.argmax(corr))
        # Energy only adds, so the echo is never louder than what came in: at the true delay, every frame
        # bounds the ERL from above. A low percentile (not the minimum) absorbs the per-frame spread of the
        # echo level. This bound needs no correlation, so a handset with no echo at all (the common case)
        # quickly gets a very low ERL instead of the worst case, and a caller talking over the bot only
        # loosens it.
        diff = inbound[None, :] - ref
        counts = active.sum(axis=1)
        if not counts.any():
            return  # no reference frame is loud enough: nothing to learn (nor enough for a delay below)
        ranked = np.sort(np.where(active, diff, np.inf), axis=1)  # inactive frames sort last
        tenth = ranked[self._lags, (counts - 1) // 10]  # 10th percentile of each lag's active frames
        bound = float(tenth[counts > 0].max())
        self.erl_db = min(self.erl_db, bound + self.config.margin_db)
        count = int(counts[best])
        if corr[best] < self.config.min_correlation or count < self.config.min_frames // 2:
            return
        # A clear envelope match means the echo is audible: take its delay and median level. Double talk
        # can fake a match at a wrong lag, so the learnt ERL rises slowly and falls fast.
        self.delay_frames = best
        row = ranked[best]  # its first ``count`` values are that lag's active differences, sorted
        half = count // 2
        erl = float(row[half]) if count % 2 else float((row[half - 1] + row[half]) / 2)
        self.erl_db = min(erl, self.erl_db + 2.0, 0.0)

    def _rows(self, n: int) -> npt.NDArray[np.intp]:
        """Indexes into the ``n + max_lag`` reference window: row ``lag`` is the reference ``lag`` frames
        before the inbound window (cached per window length; building it costs more than using it)."""
        found = self._row_cache.get(n)
        if found is None:
            found = (self._max_lag - self._lags)[:, None] + np.arange(n)[None, :]
            self._row_cache[n] = found
        return found

    def _last(self, ring: list[float], end: int, count: int) -> list[float]:
        """The ``count`` (at most a ring) values of ``ring`` before frame ``end``, oldest first."""
        a, b = (end - count) % self._RING, end % self._RING
        return ring[a:b] if a < b else ring[a:] + ring[:b]


def pcm16_level_db(pcm: bytes) -> float:
    """``level_db`` of a PCM16 frame straight from its bytes, with no array: it runs on every 20 ms frame of
    every call."""
    return 10 * math.log10(max(pcm16_power(pcm), 1e-9) / 32768.0**2)


def level_db(samples: npt.NDArray[np.float32]) -> float:
    """Mean power of a frame in dBFS (a full-scale square wave is 0 dBFS)."""
    power = float(samples @ samples) / max(len(samples), 1)
    return float(10 * np.log10(max(power, 1e-9) / 32768.0**2))
