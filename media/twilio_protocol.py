"""Twilio Media Streams wire messages: inbound text frames parsed into the types of ``twilio_messages``.

Parsing is strict about shape and lenient about Twilio's own quirks (numbers arrive as JSON strings,
``streamSid`` appears only from ``start`` on, the DTMF track is ``inbound_track``), so a genuine protocol
violation surfaces as a ``MalformedMessage`` with a short machine-readable ``reason`` that the endpoint
can count, while the call goes on.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable, Mapping
from typing import Any, Final

import msgspec

from media.errors import ProtocolError
from media.twilio_messages import Connected, Dtmf, InboundMessage, Mark, Media, Start, Stop, UnknownEvent

MAX_MESSAGE_CHARS = 64 * 1024
"""Twilio's inbound frames are ~300 characters; anything this large is not Twilio and not worth parsing."""


_DECODE: Final = msgspec.json.Decoder()
"""Every inbound message that ``inbound_audio`` declines is decoded here: msgspec's C decoder takes a quarter
of ``json.loads``'s time on Twilio's ~300-character media messages, and yields the same plain dicts."""


class MalformedMessage(ProtocolError):
    """``reason`` is a stable tag (``bad_json``, ``bad_base64``, ...) for counting; ``detail`` says more."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


DTMF_DIGITS = frozenset("0123456789*#ABCD")


class _MediaBody(msgspec.Struct):
    payload: bytes  # msgspec decodes base64 itself
    track: str = "inbound"
    chunk: str | int = 0
    timestamp: str | int = 0


class _MediaFrame(msgspec.Struct):
    event: str
    sequenceNumber: str | int  # Twilio's field names
    streamSid: str
    media: _MediaBody


_MEDIA_DECODE: Final = msgspec.json.Decoder(_MediaFrame)


def _plain_number(value: str | int) -> bool:
    """Digits only (``isdecimal``: what ``int`` reads; ``isdigit`` also passes "²", which it refuses)."""
    return value.isdecimal() if isinstance(value, str) else type(value) is int and value >= 0


def inbound_audio(text: str) -> tuple[int, str, bytes] | None:
    """Sequence number, stream SID and audio of a well-formed inbound media frame, or None.

    The 50-a-second message of every call, decoded in one C pass (base64 included) and checked without
    building a ``Media`` (a dataclass and three conversions cost three times the JSON decode). Anything
    else returns None and takes ``parse_inbound``, which says what is wrong.
    """
    try:
        frame = _MEDIA_DECODE.decode(text)
    except (ValueError, RecursionError):
        return None
    body, seq = frame.media, frame.sequenceNumber
    if (
        frame.event != "media"
        or body.track != "inbound"
        or not _plain_number(seq)
        or not _plain_number(body.chunk)
        or not _plain_number(body.timestamp)
    ):
        return None
    return int(seq), frame.streamSid, body.payload


def parse_inbound(text: str) -> InboundMessage:
    """One text frame from Twilio → a typed message; raises ``MalformedMessage`` saying why not.

    No fast path of its own: the media socket reads its frames with ``inbound_audio`` first, so this sees
    only what that declines (another event, a gap, an odd field), rarely a media frame.
    """
    if len(text) > MAX_MESSAGE_CHARS:
        raise MalformedMessage("oversized", f"{len(text)} characters, limit {MAX_MESSAGE_CHARS}")
    try:
        data = _DECODE.decode(text)
    except (ValueError, RecursionError) as exc:
        raise MalformedMessage("bad_json", str(exc)[:80]) from None
    if not isinstance(data, dict):
        raise MalformedMessage("bad_json", f"top level is {type(data).__name__}, not an object")
    event = data.get("event")
    if not isinstance(event, str) or not event:
        raise MalformedMessage("missing_event", "no string 'event' field")
    parser = _PARSERS.get(event)
    if parser is None:
        seq = data.get("sequenceNumber")
        return UnknownEvent(
            name=event[:40],
            sequence=_int(seq, "sequenceNumber") if seq is not None else None,
            keys=tuple(sorted(str(k) for k in data)[:10]),
        )
    return parser(data)


def _parse_connected(d: dict[str, Any]) -> Connected:
    return Connected(protocol=_opt_str(d, "protocol"), version=_opt_str(d, "version"))


def _parse_start(d: dict[str, Any]) -> Start:
    body = _obj(d, "start")
    fmt = body.get("mediaFormat") or {}
    if not isinstance(fmt, dict):
        raise MalformedMessage("bad_field", "start.mediaFormat is not an object")
    params = body.get("customParameters") or {}
    if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
        raise MalformedMessage("bad_field", "start.customParameters is not a map of strings")
    tracks = body.get("tracks") or []
    if not isinstance(tracks, list):
        raise MalformedMessage("bad_field", "start.tracks is not a list")
    return Start(
        sequence=_seq(d),
        stream_sid=_str(body, "streamSid", "start.streamSid"),
        call_sid=_str(body, "callSid", "start.callSid"),
        account_sid=_opt_str(body, "accountSid"),
        tracks=tuple(str(t) for t in tracks),
        custom_parameters={str(k): v for k, v in params.items()},
        encoding=str(fmt.get("encoding", "")),
        sample_rate=_int(fmt.get("sampleRate", 0), "mediaFormat.sampleRate"),
        channels=_int(fmt.get("channels", 0), "mediaFormat.channels"),
    )


def _parse_media(d: dict[str, Any]) -> Media:
    body = _obj(d, "media")
    payload = _str(body, "payload", "media.payload", allow_empty=True)
    try:
        audio = binascii.a2b_base64(payload, strict_mode=True)
    except (binascii.Error, ValueError):
        raise MalformedMessage("bad_base64", f"media.payload of {len(payload)} characters") from None
    return Media(
        sequence=_seq(d),
        stream_sid=_str(d, "streamSid", "streamSid"),
        track=_opt_str(body, "track") or "inbound",
        chunk=_int(body.get("chunk", 0), "media.chunk"),
        timestamp_ms=_int(body.get("timestamp", 0), "media.timestamp"),
        payload=audio,
    )


def _parse_dtmf(d: dict[str, Any]) -> Dtmf:
    body = _obj(d, "dtmf")
    digit = _str(body, "digit", "dtmf.digit")
    if digit not in DTMF_DIGITS:
        raise MalformedMessage("bad_field", f"dtmf.digit {digit[:4]!r} is not a key")
    return Dtmf(
        sequence=_seq(d),
        stream_sid=_str(d, "streamSid", "streamSid"),
        track=_opt_str(body, "track") or "inbound_track",
        digit=digit,
    )


def _parse_mark(d: dict[str, Any]) -> Mark:
    body = _obj(d, "mark")
    return Mark(
        sequence=_seq(d), stream_sid=_str(d, "streamSid", "streamSid"), name=_str(body, "name", "mark.name")
    )


def _parse_stop(d: dict[str, Any]) -> Stop:
    body = d.get("stop") or {}
    if not isinstance(body, dict):
        raise MalformedMessage("bad_field", "stop is not an object")
    return Stop(
        sequence=_seq(d),
        stream_sid=_str(d, "streamSid", "streamSid"),
        call_sid=_opt_str(body, "callSid"),
        account_sid=_opt_str(body, "accountSid"),
    )


_PARSERS: dict[str, Callable[[dict[str, Any]], InboundMessage]] = {
    "connected": _parse_connected,
    "start": _parse_start,
    "media": _parse_media,
    "dtmf": _parse_dtmf,
    "mark": _parse_mark,
    "stop": _parse_stop,
}


def _obj(d: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = d.get(key)
    if not isinstance(value, dict):
        raise MalformedMessage("missing_field", f"{key!r} object missing")
    return value


def _str(d: Mapping[str, Any], key: str, label: str, *, allow_empty: bool = False) -> str:
    value = d.get(key)
    if not isinstance(value, str) or (not value and not allow_empty):
        raise MalformedMessage("missing_field", f"{label} missing or not a string")
    return value


def _opt_str(d: Mapping[str, Any], key: str) -> str:
    value = d.get(key, "")
    return value if isinstance(value, str) else str(value)


def _int(value: object, label: str) -> int:
    """Twilio sends numbers as strings; accept real JSON integers too, reject anything else."""
    if isinstance(value, bool):
        raise MalformedMessage("bad_number", f"{label} is a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdecimal():
        return int(value)
    raise MalformedMessage("bad_number", f"{label} is {str(value)[:20]!r}, not a number")


def _seq(d: Mapping[str, Any]) -> int:
    if "sequenceNumber" not in d:
        raise MalformedMessage("missing_field", "sequenceNumber missing")
    return _int(d["sequenceNumber"], "sequenceNumber")
