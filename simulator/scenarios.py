"""Load scenarios for ``voicebot simulate``: many calls, each a caller that talks, pauses, interrupts or not.

Real-time pacing is the point: every call streams a 20 ms μ-law frame every 20 ms of wall time for as long
as it lasts (speech when the caller talks, μ-law silence otherwise, as Twilio does), and plays the bot's
audio out at 8000 bytes/s. To keep 200 calls in one process cheap, one ``FrameClock`` task sends the frames
of every call (no timer per call), frames are pre-encoded (base64 once per utterance, the JSON by string
template) and waiting never polls faster than 10 times a second.

Scenarios (``SCENARIOS``):

- ``turns``: greeting, then caller utterances with pauses; each reply is listened to until the end.
- ``bargein``: like ``turns``, but every reply is interrupted ``interrupt_after_s`` after its first audio by
  a long utterance; the reply to that interruption is listened to until the end.
- ``silence``: the caller says nothing (the bot reprompts, then says goodbye and hangs up).
- ``dtmf``: after the greeting the caller presses keys, one after each answer.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Literal

from simulator.caller import Caller, FrameClock
from simulator.caller_audio import (
    _MEDIA,
    FRAME_S,
    RATE,
    SILENT_PAYLOAD,
    Speech,
    WavError,
    load_wav,
    speech_ulaw,
)
from simulator.record import Utterance

__all__ = [
    "DEFAULT_INTERRUPTION",
    "DEFAULT_UTTERANCES",
    "FRAME_S",
    "RATE",
    "SCENARIOS",
    "SILENT_PAYLOAD",
    "_MEDIA",
    "Caller",
    "FrameClock",
    "Scenario",
    "ScenarioConfig",
    "Speech",
    "WavError",
    "load_wav",
    "run_scenario",
    "speech_ulaw",
]

Scenario = Literal["turns", "bargein", "silence", "dtmf"]
SCENARIOS: tuple[Scenario, ...] = ("turns", "bargein", "silence", "dtmf")

DEFAULT_UTTERANCES = (
    "Guten Tag, ich habe eine Frage zu meiner letzten Rechnung.",
    "Meine Kundennummer ist vier fünf sechs sieben acht.",
    "Wann haben Sie heute geöffnet?",
)
DEFAULT_INTERRUPTION = "Moment, entschuldigen Sie, ich habe eine ganz andere Frage zu meinem Vertrag."


# --- scenarios -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScenarioConfig:
    scenario: Scenario = "turns"
    utterances: tuple[Speech, ...] = ()
    interruption: Speech | None = None
    pause_s: float = 1.0
    """Silence after the bot has finished a reply, before the caller speaks again."""
    interrupt_after_s: float = 1.0
    """``bargein``: how far into the reply the caller starts talking."""
    digits: str = "0"
    max_turns: int | None = None
    reply_timeout_s: float = 15.0


async def _greeting(caller: Caller, cfg: ScenarioConfig, deadline: float) -> bool:
    if not await caller.until(lambda: caller.closed or caller.record.audio_messages > 0, 10.0):
        caller.missing.append("no greeting")
        return False
    return await caller.listen_to_end(cfg.pause_s, max(0.1, deadline - time.monotonic()))


async def _reply_to(caller: Caller, utt: Utterance, cfg: ScenarioConfig) -> bool:
    ok = await caller.until(lambda: caller.closed or utt.first_audio_at is not None, cfg.reply_timeout_s)
    if utt.first_audio_at is None and not caller.closed:
        caller.missing.append("no reply")
    return ok and not caller.closed


async def run_scenario(caller: Caller, cfg: ScenarioConfig, deadline: float) -> None:
    """Plays ``cfg.scenario`` on a started call until ``deadline`` (monotonic) or its natural end."""
    if cfg.scenario == "silence":
        await caller.until(lambda: caller.closed, max(0.0, deadline - time.monotonic()), poll_s=0.5)
        return
    if not await _greeting(caller, cfg, deadline):
        return
    utterances = cfg.utterances
    for turn in itertools.count():
        if caller.closed or time.monotonic() >= deadline:
            return
        if cfg.max_turns is not None and turn >= cfg.max_turns:
            return
        if cfg.scenario == "dtmf":
            digit = cfg.digits[turn % len(cfg.digits)]
            sent = await caller.press(digit)
            seen = caller.record.audio_messages
            more = lambda: caller.closed or caller.record.audio_messages > seen  # noqa: B023, E731
            if not await caller.until(more, 10.0):
                caller.missing.append(f"no answer to dtmf {digit}")
                return
            if caller.record.audio_messages > seen:
                caller.dtmf_latencies.append(time.monotonic() - sent)
        else:
            utt = await caller.say(utterances[turn % len(utterances)])
            if not await _reply_to(caller, utt, cfg):
                return
            if cfg.scenario == "bargein" and cfg.interruption is not None:
                wait = cfg.interrupt_after_s - (time.monotonic() - (utt.first_audio_at or 0.0))
                if wait > 0:
                    await caller.pause(wait)
                barge = await caller.say(cfg.interruption)
                if not barge.over_bot_audio:
                    caller.missing.append("reply over before the barge-in")
                elif barge.clear_at is None and not await caller.until(
                    lambda: caller.closed or barge.clear_at is not None,  # noqa: B023
                    5.0,
                ):
                    caller.missing.append("no clear")
                if not await _reply_to(caller, barge, cfg):
                    return
        if not await caller.listen_to_end(cfg.pause_s, cfg.reply_timeout_s + 60):
            return
