"""Events on the wire between bot instances (channels) and at rest (the call store): plain JSON."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Final

from dialogue.events import (
    BotSentence,
    CallEnded,
    CallError,
    CallEvent,
    CallStarted,
    ProtocolEvent,
    SpeechActivity,
    StateChanged,
    TranscriptEvent,
    TurnDecision,
    TurnLatency,
)

_EVENT_TYPES: Final = (
    CallStarted,
    StateChanged,
    TranscriptEvent,
    BotSentence,
    ProtocolEvent,
    SpeechActivity,
    TurnLatency,
    TurnDecision,
    CallError,
    CallEnded,
)


def _kind(cls: type[CallEvent]) -> str:
    """The ``kind`` field's default: with slots the class attribute is a descriptor, not the string."""
    return str(next(f.default for f in dataclasses.fields(cls) if f.name == "kind"))


_KINDS: Final[dict[str, type[CallEvent]]] = {_kind(cls): cls for cls in _EVENT_TYPES}


def encode_event(event: CallEvent) -> bytes:
    return json.dumps(event.to_dict(), separators=(",", ":")).encode()


def decode_event(payload: bytes | str) -> CallEvent | None:
    """Rebuilds the dataclass; fields a newer publisher added are ignored, unknown kinds give None."""
    try:
        data: dict[str, Any] = json.loads(payload)
        cls = _KINDS.get(str(data.get("kind")), None)
        if cls is None:
            return None
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
    except (ValueError, TypeError):
        return None
