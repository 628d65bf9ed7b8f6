"""Twilio Media Streams messages from the bot: audio, marks and clears as compact JSON text.

Kept apart from the inbound parser: these are built for every 100 ms of bot audio of every call, so the
media message is a template with the payload dropped in, not a dict through ``json.dumps``.
"""

from __future__ import annotations

import binascii
import functools
import json
from typing import Any, Final


def _dump(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def media_message(stream_sid: str, ulaw: bytes) -> str:
    """Raw μ-law, base64; no ``track`` and no ``chunk`` (Twilio ignores both on outbound media).

    The same text ``_dump`` would build, from a template: base64 needs no JSON escaping, so only the stream
    id is encoded (once per stream), not a dict per 100 ms chunk of every call.
    """
    payload = binascii.b2a_base64(ulaw, newline=False).decode("ascii")
    return f"{_media_head(stream_sid)}{payload}{_MEDIA_TAIL}"


@functools.lru_cache(maxsize=4096)
def _media_head(stream_sid: str) -> str:
    sid = json.dumps(stream_sid, ensure_ascii=False)
    return f'{{"event":"media","streamSid":{sid},"media":{{"payload":"'


_MEDIA_TAIL: Final = '"}}'


def mark_message(stream_sid: str, name: str) -> str:
    return _dump({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})


def clear_message(stream_sid: str) -> str:
    return _dump({"event": "clear", "streamSid": stream_sid})
