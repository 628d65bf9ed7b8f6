"""WS /media end to end: the simulator speaks Twilio's protocol to the running app over a real socket."""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from typing import Any

import pytest
import structlog

from simulator.call import place_call
from simulator.twilio import ConnectRejected, TwilioSimulator
from tests.edge.conftest import AUTH_TOKEN, PUBLIC_URL, Bot, running_bot
from tests.support.handlers import RecordingFactory, speech


def ended(logs: list[MutableMapping[str, Any]]) -> MutableMapping[str, Any]:
    return next(e for e in logs if e["event"] == "stream_ended")


async def test_every_event_reaches_the_handler_and_audio_plays_raw(bot: Bot) -> None:
    async with place_call(bot.base_url, public_url=PUBLIC_URL, auth_token=AUTH_TOKEN) as sim:
        handler = await bot.factory.for_call(sim.call_sid)
        assert handler.start.stream_sid == sim.stream_sid
        assert handler.start.custom_parameters["caller"] == "+4917612345678"
        assert bot.edge.registry.active == 1
        await sim.wait_for_audio(len(speech(300)))
        await sim.play_out()
        assert sim.record.echoed("greeting") is not None
        assert sim.heard_audio() == speech(300)
        await sim.send_silence(400)
        await sim.send_dtmf("4")
        await sim.send_dtmf("#")
        await sim.wait_for(lambda: handler.dtmf == ["4", "#"] and handler.marks == ["greeting"])
        assert (handler.frames, handler.audio_bytes) == (20, 3200)
    await handler.stopped.wait()
    assert handler.stops == ["stop"]
    assert bot.edge.registry.active == 0
    assert sim.record.violations == []


@pytest.mark.parametrize(
    ("auth_token", "signed_url"),
    [
        (None, None),  # no signature header at all
        ("wrong-token", "wss://bot.example.com/media"),
        (AUTH_TOKEN, "ws://127.0.0.1/media"),  # signed over what the server sees behind a proxy
        (AUTH_TOKEN, "https://bot.example.com/media"),  # signed over the https URL, not the wss one
    ],
)
async def test_bad_upgrade_signature_is_403_before_accept(
    bot: Bot, auth_token: str | None, signed_url: str | None
) -> None:
    sim = TwilioSimulator(bot.ws_url, auth_token=auth_token, signed_url=signed_url)
    with structlog.testing.capture_logs() as logs, pytest.raises(ConnectRejected) as info:
        await sim.connect()
    assert info.value.status == 403
    assert any(e["event"] == "media_signature_invalid" for e in logs)
    assert bot.factory.handlers == []


async def test_token_mismatch_ends_the_stream_without_a_session(bot: Bot) -> None:
    sim = TwilioSimulator(
        bot.ws_url,
        auth_token=AUTH_TOKEN,
        signed_url=PUBLIC_URL.replace("https", "wss") + "/media",
        custom_parameters={"token": "forged"},
    )
    with structlog.testing.capture_logs() as logs:
        async with sim:
            await sim.start()
            await sim.wait_closed()
    assert sim.record.closed_by_bot
    assert bot.factory.handlers == []
    assert [e["reason"] for e in logs if e["event"] == "stream_token_rejected"] == ["mismatch"]
    assert ended(logs)["reason"] == "rejected_token"


async def test_token_is_one_time(bot: Bot) -> None:
    async with place_call(bot.base_url, public_url=PUBLIC_URL, auth_token=AUTH_TOKEN) as first:
        replay = TwilioSimulator(
            bot.ws_url,
            call_sid=first.call_sid,
            custom_parameters=first.custom_parameters,
            auth_token=AUTH_TOKEN,
            signed_url="wss://bot.example.com/media",
        )
        async with replay:
            await replay.start()
            await replay.wait_closed()
        assert replay.record.closed_by_bot
        assert len(bot.factory.handlers) == 1


async def test_missing_token_is_refused_when_signatures_are_on(bot: Bot) -> None:
    sim = TwilioSimulator(bot.ws_url, auth_token=AUTH_TOKEN, signed_url="wss://bot.example.com/media")
    async with sim:
        await sim.start()
        await sim.wait_closed()
    assert bot.factory.handlers == []


async def test_missing_token_is_accepted_with_a_warning_in_development(open_bot: Bot) -> None:
    with structlog.testing.capture_logs() as logs:
        async with TwilioSimulator(open_bot.ws_url) as sim:
            await sim.start()
            await sim.wait_for(lambda: len(open_bot.factory.handlers) == 1)
    assert any(e["event"] == "stream_token_missing" for e in logs)


async def test_malformed_input_is_counted_logged_once_and_the_call_goes_on(open_bot: Bot) -> None:
    with structlog.testing.capture_logs() as logs:
        async with TwilioSimulator(open_bot.ws_url) as sim:
            await sim.send_audio(b"\xff" * 160)  # media before start
            await sim.start()
            await sim.send_raw("{not json")
            await sim.send_raw("{still not json")
            bad_b64 = {"event": "media", "sequenceNumber": "99", "streamSid": sim.stream_sid}
            await sim.send_raw(json.dumps({**bad_b64, "media": {"payload": "%%"}}))
            await sim.send_raw("x" * 70_000)
            await sim.send_raw(b"\x00\x01")
            await sim.send_raw(json.dumps({"event": "transcription", "streamSid": sim.stream_sid}))
            await sim.send_audio(b"\xff" * 800)
            handler = await open_bot.factory.for_call(sim.call_sid)
            await sim.wait_for(lambda: handler.frames == 5)
        await handler.stopped.wait()
    problems = ended(logs)["problems"]
    assert problems == {
        "media_before_start": 1,
        "bad_json": 2,
        "bad_base64": 1,
        "oversized": 1,
        "binary_frame": 1,
    }
    rejected = [e["reason"] for e in logs if e["event"] == "stream_message_rejected"]
    assert sorted(rejected) == sorted(problems)  # each reason logged once
    assert any(e["event"] == "stream_event_unknown" and e["name"] == "transcription" for e in logs)
    assert handler.stops == ["stop"]


async def test_sequence_gaps_are_counted(open_bot: Bot) -> None:
    with structlog.testing.capture_logs() as logs:
        async with TwilioSimulator(open_bot.ws_url) as sim:
            await sim.start()
            await sim.send_silence(40)
            sim.skip_sequence(3)
            await sim.send_silence(40)
            handler = await open_bot.factory.for_call(sim.call_sid)
            await sim.wait_for(lambda: handler.frames == 4)
        await handler.stopped.wait()
    assert ended(logs)["sequence_gaps"] == 3


async def test_frames_go_from_the_socket_to_the_call_in_the_calls_context(open_bot: Bot) -> None:
    """The direct path (``web.media_protocol``): no ASGI queue and task switch per frame, and what the
    session logs or starts from a frame still carries the call's binding."""
    async with TwilioSimulator(open_bot.ws_url) as sim:
        await sim.start()
        handler = await open_bot.factory.for_call(sim.call_sid)
        await sim.send_silence(1000)
        await sim.wait_for(lambda: handler.frames == 50)
    assert handler.frames_in_a_task <= 1  # only a frame queued behind ``start`` may take the task
    assert handler.frame_call_sids == {sim.call_sid}


async def test_a_session_that_raises_on_a_frame_ends_the_call_as_an_error(open_bot: Bot) -> None:
    open_bot.factory.fail_at_frame = 5
    with structlog.testing.capture_logs() as logs:
        async with TwilioSimulator(open_bot.ws_url) as sim:
            await sim.start()
            handler = await open_bot.factory.for_call(sim.call_sid)
            await sim.send_silence(200)
            await handler.stopped.wait()
    assert handler.stops == ["error"]
    assert handler.frames == 5  # the failing frame is not handed over twice, the rest not at all
    assert [e["event"] for e in logs].count("stream_failed") == 1
    assert ended(logs)["reason"] == "error"
    assert open_bot.edge.registry.active == 0


async def test_socket_closed_without_stop_is_a_hangup(open_bot: Bot) -> None:
    sim = TwilioSimulator(open_bot.ws_url)
    await sim.connect()
    await sim.start()
    await sim.wait_for(lambda: len(open_bot.factory.handlers) == 1)
    await sim.drop()
    handler = await open_bot.factory.for_call(sim.call_sid)
    await handler.stopped.wait()
    assert handler.stops == ["socket_closed"]
    assert open_bot.edge.registry.active == 0


async def test_clear_flushes_audio_and_echoes_pending_marks_at_once(open_bot: Bot) -> None:
    async with TwilioSimulator(open_bot.ws_url) as sim:
        await sim.start()
        handler = await open_bot.factory.for_call(sim.call_sid)
        await sim.play_out()
        await sim.send_dtmf("1")  # the handler queues 500 ms of reply with mark reply-1
        await sim.wait_for(lambda: "reply-1" in sim.playout.pending_marks)
        await sim.send_dtmf("2")  # barge-in: the handler sends clear
        echo = await sim.wait_for_echo("reply-1")
        assert echo.flushed
        await sim.wait_for(lambda: "reply-1" in handler.marks)
        assert sim.playout.dropped_bytes > 0
        assert len(sim.heard_audio()) < len(speech(300)) + len(speech(500))


async def test_two_concurrent_calls_do_not_disturb_each_other(bot: Bot) -> None:
    async with (
        place_call(bot.base_url, public_url=PUBLIC_URL, auth_token=AUTH_TOKEN) as a,
        place_call(bot.base_url, public_url=PUBLIC_URL, auth_token=AUTH_TOKEN, caller="+4915100000001") as b,
    ):
        ha, hb = await bot.factory.for_call(a.call_sid), await bot.factory.for_call(b.call_sid)
        assert bot.edge.registry.active == 2
        await a.send_silence(200)
        await b.send_silence(600)
        await a.send_dtmf("1")
        await b.send_dtmf("7")
        await a.play_out()
        await b.play_out()
        await a.wait_for(lambda: ha.marks == ["greeting", "reply-1"] and hb.marks == ["greeting"])
        assert (ha.frames, hb.frames) == (10, 30)
        assert (ha.dtmf, hb.dtmf) == (["1"], ["7"])
        assert hb.start.custom_parameters["caller"] == "+4915100000001"
        await a.hang_up()
        await ha.stopped.wait()
        assert bot.edge.registry.active == 1
        await b.send_dtmf("1")
        await b.wait_for(lambda: "reply-1" in b.playout.pending_marks)
        await b.play_out()
        await b.wait_for(lambda: hb.marks == ["greeting", "reply-1"])
        assert hb.stops == []
    assert a.record.violations == b.record.violations == []
    assert a.record.audio_bytes == len(speech(300)) + len(speech(500))


async def test_hang_up_mid_speech() -> None:
    async with running_bot(RecordingFactory(greeting_ms=4000), twilio_auth_token="") as bot:
        async with TwilioSimulator(bot.ws_url) as sim:
            await sim.start()
            await sim.wait_for_audio(len(speech(4000)))
            assert sim.playout.playing
            assert sim.playout.pending_marks == ("greeting",)
        handler = await bot.factory.for_call(sim.call_sid)
        await handler.stopped.wait()
        assert handler.stops == ["stop"]
        assert handler.marks == []  # never heard to the end: no echo
        assert len(sim.heard_audio()) < len(speech(4000))
        await handler.transport.send_audio(speech(500))  # the session is still talking: dropped, no error
        await handler.transport.send_mark("late")
        assert getattr(handler.transport, "closed", False)
        assert bot.edge.registry.active == 0


async def test_bot_hangup_without_rest_credentials_closes_the_stream(open_bot: Bot) -> None:
    async with TwilioSimulator(open_bot.ws_url) as sim:
        await sim.start()
        await sim.send_dtmf("9")
        await sim.wait_closed()
        handler = await open_bot.factory.for_call(sim.call_sid)
        await handler.stopped.wait()
    assert sim.record.closed_by_bot
    assert handler.stops == ["bot_closed"]


async def test_transfer_without_rest_credentials_reports_false(open_bot: Bot) -> None:
    async with TwilioSimulator(open_bot.ws_url) as sim:
        await sim.start()
        await sim.send_dtmf("0")
        handler = await open_bot.factory.for_call(sim.call_sid)
        await sim.wait_for(lambda: handler.transfer_result is not None)
    assert handler.transfer_result is False
