"""Outbound audio: raw μ-law in 100 ms messages, marks, clear, and quiet after the socket is gone."""

from __future__ import annotations

import json

import pytest

from media.errors import ProtocolError
from media.twilio_transport import CHUNK_BYTES, StreamClosed, TwilioTransport
from simulator import wire

SID = "MZ" + "2" * 32


class Wire:
    """The far end of ``send_text``: keeps what was sent, can be made to fail like a closed socket."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.gone = False
        self.closes = 0

    async def send(self, text: str) -> None:
        if self.gone:
            raise StreamClosed("gone")
        self.sent.append(text)

    async def close(self) -> None:
        self.closes += 1

    def parsed(self) -> list[wire.BotMessage]:
        return [wire.parse_outbound(t, stream_sid=SID) for t in self.sent]


async def test_audio_is_split_into_chunks_and_counted() -> None:
    w = Wire()
    tr = TwilioTransport(SID, w.send, w.close)
    audio = bytes(range(256)) * 10  # 2560 bytes = 320 ms
    await tr.send_audio(audio)
    await tr.send_mark("s1")
    msgs = w.parsed()
    media = [m for m in msgs if isinstance(m, wire.BotMedia)]
    assert [len(m.ulaw) for m in media] == [CHUNK_BYTES, CHUNK_BYTES, CHUNK_BYTES, 160]
    assert b"".join(m.ulaw for m in media) == audio
    assert msgs[-1] == wire.BotMark("s1")
    assert (tr.stats.bytes_sent, tr.stats.media_messages, tr.stats.marks_sent) == (2560, 4, 1)
    assert all("track" not in json.loads(t).get("media", {}) for t in w.sent)


async def test_wav_header_is_refused() -> None:
    w = Wire()
    tr = TwilioTransport(SID, w.send, w.close)
    with pytest.raises(ProtocolError, match="WAV"):
        await tr.send_audio(b"RIFF\x00\x00\x00\x00WAVEfmt " + b"\x00" * 40)
    assert w.sent == []


async def test_clear_and_close() -> None:
    w = Wire()
    tr = TwilioTransport(SID, w.send, w.close)
    await tr.clear()
    assert w.parsed() == [wire.BotClear()]
    await tr.close()
    await tr.close()
    assert (w.closes, tr.closed) == (1, True)
    await tr.send_audio(b"\x00" * 100)
    assert tr.stats.bytes_dropped == 100


async def test_sending_after_hangup_drops_quietly() -> None:
    w = Wire()
    tr = TwilioTransport(SID, w.send, w.close)
    await tr.send_audio(b"\x00" * 800)
    w.gone = True
    await tr.send_audio(b"\x00" * 2000)
    await tr.send_mark("late")
    await tr.clear()
    assert tr.closed
    assert (tr.stats.bytes_sent, tr.stats.bytes_dropped, tr.stats.marks_sent) == (800, 2000, 0)
