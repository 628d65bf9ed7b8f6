"""The Media Streams wire as Twilio speaks it, written from the protocol description, not from the bot's code.

Keeping this independent of ``media.twilio_protocol`` is the point: a misreading of the protocol shared by
both sides would otherwise pass every test.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_OUTBOUND_CHARS = 64 * 1024
"""What we accept from the bot per message; Twilio's real limit is undocumented, so stay well under it."""


def _dump(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


def connected() -> str:
    return _dump({"event": "connected", "protocol": "Call", "version": "1.0.0"})


def start(
    seq: int,
    *,
    stream_sid: str,
    call_sid: str,
    account_sid: str,
    custom_parameters: Mapping[str, str],
) -> str:
    return _dump(
        {
            "event": "start",
            "sequenceNumber": str(seq),
            "start": {
                "streamSid": stream_sid,
                "accountSid": account_sid,
                "callSid": call_sid,
                "tracks": ["inbound"],
                "customParameters": dict(custom_parameters),
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
            "streamSid": stream_sid,
        }
    )


def media(seq: int, *, stream_sid: str, chunk: int, timestamp_ms: int, ulaw: bytes) -> str:
    payload = base64.b64encode(ulaw).decode("ascii")
    return _dump(
        {
            "event": "media",
            "sequenceNumber": str(seq),
            "media": {
                "track": "inbound",
                "chunk": str(chunk),
                "timestamp": str(timestamp_ms),
                "payload": payload,
            },
            "streamSid": stream_sid,
        }
    )


def dtmf(seq: int, *, stream_sid: str, digit: str) -> str:
    return _dump(
        {
            "event": "dtmf",
            "sequenceNumber": str(seq),
            "streamSid": stream_sid,
            "dtmf": {"track": "inbound_track", "digit": digit},
        }
    )


def mark(seq: int, *, stream_sid: str, name: str) -> str:
    return _dump(
        {"event": "mark", "sequenceNumber": str(seq), "streamSid": stream_sid, "mark": {"name": name}}
    )


def stop(seq: int, *, stream_sid: str, call_sid: str, account_sid: str) -> str:
    return _dump(
        {
            "event": "stop",
            "sequenceNumber": str(seq),
            "streamSid": stream_sid,
            "stop": {"accountSid": account_sid, "callSid": call_sid},
        }
    )


# --- what the bot sends ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BotMedia:
    ulaw: bytes


@dataclass(frozen=True, slots=True)
class BotMark:
    name: str


@dataclass(frozen=True, slots=True)
class BotClear:
    pass


BotMessage = BotMedia | BotMark | BotClear


class WireViolation(Exception):
    """The bot sent something Twilio would reject or mis-play."""


def parse_outbound(text: str, *, stream_sid: str) -> BotMessage:
    if len(text) > MAX_OUTBOUND_CHARS:
        raise WireViolation(f"message of {len(text)} characters")
    try:
        data = json.loads(text)
    except ValueError:
        raise WireViolation("not JSON") from None
    if not isinstance(data, dict):
        raise WireViolation("not a JSON object")
    event = data.get("event")
    if data.get("streamSid") != stream_sid:
        raise WireViolation(f"{event}: streamSid {data.get('streamSid')!r} is not this stream's")
    if event == "media":
        body = data.get("media")
        if not isinstance(body, dict) or not isinstance(body.get("payload"), str):
            raise WireViolation("media without media.payload")
        try:
            ulaw = base64.b64decode(body["payload"], validate=True)
        except (binascii.Error, ValueError):
            raise WireViolation("media.payload is not base64") from None
        if ulaw[:4] == b"RIFF":
            raise WireViolation("media.payload starts with a WAV (RIFF) header")
        return BotMedia(ulaw)
    if event == "mark":
        body = data.get("mark")
        if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body["name"]:
            raise WireViolation("mark without mark.name")
        return BotMark(body["name"])
    if event == "clear":
        return BotClear()
    raise WireViolation(f"unknown outbound event {event!r}")
