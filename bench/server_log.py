"""What a benchmarked server's own log says went wrong: budget expiries, fallbacks and the underruns its
playout saw, counted from the JSON lines of ``LOG_FORMAT=json`` at ``LOG_LEVEL=warning``.

The log is the one source that covers every worker of ``voicebot serve --workers N`` at once (they share
the terminal), where ``/metrics`` answers for whichever process the connection lands on. The words match
``media.budget``'s errors (``no answer within``, ``nothing within``, ``stalled``, ``timed out``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

BUDGET_WORDS = ("within", "stalled", "timed out", "budget")


@dataclass(frozen=True, slots=True)
class Trouble:
    budget_expiries: int = 0
    """Stages that ran out of their time budget (a TTS engine, the LLM's first token, a transcript)."""
    fallbacks: int = 0
    """A failure answered by something else: the next voice (``tts_failed``) or a fallback phrase
    (``provider_failed`` of STT or the LLM)."""
    underruns: int = 0
    """The playout's far end ran dry mid-reply, on the bot's clock (``playout_underrun``)."""
    lines: int = 0


def log_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def count_trouble(path: Path, start: int = 0) -> Trouble:
    """Counts from byte ``start`` on (``log_size`` before a run), so one log serves several runs."""
    expiries = fallbacks = underruns = lines = 0
    try:
        with path.open("rb") as f:
            f.seek(start)
            data = f.read()
    except OSError:
        return Trouble()
    for raw in data.splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(line, dict):
            continue
        lines += 1
        event = line.get("event")
        detail = str(line.get("detail", "")).lower()
        if event == "playout_underrun":
            underruns += 1
        elif event == "tts_failed" or (event == "provider_failed" and line.get("stage") != "tts"):
            # A sentence no voice could speak logs tts_failed per engine, then provider_failed(tts): the
            # engines' lines count it; every other failure is answered by a fallback phrase.
            fallbacks += 1
            if any(word in detail for word in BUDGET_WORDS):
                expiries += 1
    return Trouble(expiries, fallbacks, underruns, lines)
