"""Parsing every inbound event with Twilio's quirks, and every class of malformed input."""

from __future__ import annotations

import base64
import json

import pytest

from media.twilio_messages import Connected, Dtmf, Mark, Media, Start, Stop, UnknownEvent
from media.twilio_outbound import clear_message, mark_message, media_message
from media.twilio_protocol import MAX_MESSAGE_CHARS, MalformedMessage, inbound_audio, parse_inbound
from simulator import wire

SID = "MZ" + "0" * 31 + "1"


def test_connected_has_no_stream_sid() -> None:
    msg = parse_inbound(wire.connected())
    assert msg == Connected(protocol="Call", version="1.0.0")


def test_start_with_string_numbers_and_parameters() -> None:
    text = wire.start(
        1,
        stream_sid=SID,
        call_sid="CA1",
        account_sid="AC1",
        custom_parameters={"caller": "+49301", "token": "t"},
    )
    msg = parse_inbound(text)
    assert isinstance(msg, Start)
    assert (msg.sequence, msg.stream_sid, msg.call_sid, msg.account_sid) == (1, SID, "CA1", "AC1")
    assert msg.custom_parameters == {"caller": "+49301", "token": "t"}
    assert msg.tracks == ("inbound",)
    assert msg.is_mulaw_8k_mono
    start = msg.to_stream_start()
    assert (start.call_sid, start.stream_sid, start.transport) == ("CA1", SID, "twilio")


def test_media_decodes_payload_and_string_numbers() -> None:
    msg = parse_inbound(wire.media(3, stream_sid=SID, chunk=2, timestamp_ms=20, ulaw=b"\xff" * 160))
    assert msg == Media(
        sequence=3, stream_sid=SID, track="inbound", chunk=2, timestamp_ms=20, payload=b"\xff" * 160
    )


def test_media_accepts_json_numbers_too() -> None:
    data = json.loads(wire.media(3, stream_sid=SID, chunk=2, timestamp_ms=20, ulaw=b"\x00"))
    data["sequenceNumber"], data["media"]["chunk"], data["media"]["timestamp"] = 3, 2, 20
    msg = parse_inbound(json.dumps(data))
    assert isinstance(msg, Media)
    assert (msg.sequence, msg.chunk, msg.timestamp_ms) == (3, 2, 20)


def test_dtmf_track_is_inbound_track() -> None:
    msg = parse_inbound(wire.dtmf(5, stream_sid=SID, digit="#"))
    assert msg == Dtmf(sequence=5, stream_sid=SID, track="inbound_track", digit="#")


def test_mark_and_stop() -> None:
    assert parse_inbound(wire.mark(7, stream_sid=SID, name="utt-3")) == Mark(7, SID, "utt-3")
    stop = parse_inbound(wire.stop(9, stream_sid=SID, call_sid="CA1", account_sid="AC1"))
    assert stop == Stop(sequence=9, stream_sid=SID, call_sid="CA1", account_sid="AC1")


def test_unknown_event_is_not_an_error() -> None:
    msg = parse_inbound(json.dumps({"event": "transcription", "sequenceNumber": "4", "streamSid": SID}))
    assert isinstance(msg, UnknownEvent)
    assert (msg.name, msg.sequence) == ("transcription", 4)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{not json", "bad_json"),
        ("[1, 2]", "bad_json"),
        ('{"sequenceNumber": "1"}', "missing_event"),
        ('{"event": "media", "sequenceNumber": "2", "streamSid": "MZ1"}', "missing_field"),
        (
            '{"event": "media", "sequenceNumber": "2", "streamSid": "MZ1", "media": {"payload": "@@b64@@"}}',
            "bad_base64",
        ),
        (
            '{"event": "media", "sequenceNumber": "x", "streamSid": "MZ1", "media": {"payload": ""}}',
            "bad_number",
        ),
        (  # a digit to str.isdigit, not to int(): once a ValueError that ended the call
            '{"event": "media", "sequenceNumber": "\u00b2", "streamSid": "MZ1", "media": {"payload": ""}}',
            "bad_number",
        ),
        ('{"event": "mark", "sequenceNumber": "2", "streamSid": "MZ1", "mark": {}}', "missing_field"),
        (
            '{"event": "dtmf", "sequenceNumber": "2", "streamSid": "MZ1", "dtmf": {"digit": "12"}}',
            "bad_field",
        ),
        ('{"event": "start", "sequenceNumber": "1", "start": {"callSid": "CA1"}}', "missing_field"),
        ('{"event": "mark", "streamSid": "MZ1", "mark": {"name": "a"}}', "missing_field"),
    ],
)
def test_malformed_messages_name_their_reason(text: str, reason: str) -> None:
    with pytest.raises(MalformedMessage) as info:
        parse_inbound(text)
    assert info.value.reason == reason
    assert info.value.detail.startswith(reason)


def _variants() -> list[str]:
    """Media frames with every field made odd in turn, and other events."""
    good = json.loads(wire.media(3, stream_sid=SID, chunk=2, timestamp_ms=20, ulaw=b"\x7f" * 160))
    texts = [json.dumps(good)]
    odd: list[object] = ["", "x", "-1", " 4", "4.0", "\u00b2", "\u0663", 4, -4, True, None, 4.5, [4]]
    for path in (("sequenceNumber",), ("media", "chunk"), ("media", "timestamp")):
        for value in odd:
            data = json.loads(json.dumps(good))
            target = data if len(path) == 1 else data["media"]
            target[path[-1]] = value
            texts.append(json.dumps(data))
    for track, payload in (("outbound", None), ("", None), (None, "@@"), (None, "")):
        data = json.loads(json.dumps(good))
        if track is not None:
            data["media"]["track"] = track
        if payload is not None:
            data["media"]["payload"] = payload
        texts.append(json.dumps(data))
    texts += [wire.mark(7, stream_sid=SID, name="m"), wire.dtmf(5, stream_sid=SID, digit="1"), "{bad", "[]"]
    return texts


@pytest.mark.parametrize("text", _variants())
def test_the_frame_fast_path_takes_only_what_parse_inbound_reads_as_inbound_audio(text: str) -> None:
    """``inbound_audio`` (the socket's path for 50 frames a second) never accepts what the general parser
    refuses or reads differently; what it declines still gets the general parser's verdict."""
    fast = inbound_audio(text)
    try:
        general: object = parse_inbound(text)
    except MalformedMessage as exc:
        general = exc
    if fast is not None:
        assert isinstance(general, Media)
        assert general.track == "inbound"
        assert fast == (general.sequence, general.stream_sid, general.payload)


def test_the_frame_fast_path_takes_twilios_frames() -> None:
    text = wire.media(3, stream_sid=SID, chunk=2, timestamp_ms=20, ulaw=b"\x7f" * 160)
    assert inbound_audio(text) == (3, SID, b"\x7f" * 160)
    data = json.loads(text)
    data["sequenceNumber"], data["media"]["chunk"], data["media"]["timestamp"] = 3, 2, 20
    assert inbound_audio(json.dumps(data)) == (3, SID, b"\x7f" * 160)


def test_oversized_message_is_refused_before_parsing() -> None:
    with pytest.raises(MalformedMessage) as info:
        parse_inbound(" " * (MAX_MESSAGE_CHARS + 1))
    assert info.value.reason == "oversized"


def test_outbound_builders_are_what_twilio_expects() -> None:
    media = json.loads(media_message(SID, b"\x01\x02\xff"))
    assert media == {
        "event": "media",
        "streamSid": SID,
        "media": {"payload": base64.b64encode(b"\x01\x02\xff").decode()},
    }
    assert json.loads(mark_message(SID, "m1")) == {"event": "mark", "streamSid": SID, "mark": {"name": "m1"}}
    assert json.loads(clear_message(SID)) == {"event": "clear", "streamSid": SID}


def test_outbound_builders_pass_the_simulators_independent_checks() -> None:
    assert wire.parse_outbound(media_message(SID, b"\x01"), stream_sid=SID) == wire.BotMedia(b"\x01")
    assert wire.parse_outbound(mark_message(SID, "m"), stream_sid=SID) == wire.BotMark("m")
    assert wire.parse_outbound(clear_message(SID), stream_sid=SID) == wire.BotClear()
