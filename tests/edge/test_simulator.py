"""The simulator's own model of Twilio playback, and what it measures, so benchmarks can trust it."""

from __future__ import annotations

import time

import pytest

from simulator.call import TwiML, local_ws_url
from simulator.playout import Playout, SimClock
from simulator.twilio import TwilioSimulator
from tests.edge.conftest import Bot
from tests.support.handlers import speech


def frozen() -> float:
    """Real time standing still: the playback model moves only by the test's skips."""
    return 1000.0


def test_marks_fall_due_when_playback_passes_them() -> None:
    clock = SimClock(frozen)
    out = Playout(clock)
    out.add_audio(b"\x00" * 8000)  # 1 s
    out.add_mark("a")
    out.add_audio(b"\x00" * 4000)
    out.add_mark("b")
    assert out.due_marks() == []
    clock.skip(1.01)
    assert [m.name for m in out.due_marks()] == ["a"]
    clock.skip(0.5)
    assert [m.name for m in out.due_marks()] == ["b"]
    assert not out.playing
    out.settle()
    assert len(out.heard) == 12000


def test_a_mark_on_an_empty_buffer_is_due_at_once() -> None:
    out = Playout(SimClock(frozen))
    out.add_mark("now")
    assert [m.name for m in out.due_marks()] == ["now"]


def test_clear_drops_the_unplayed_rest_and_returns_pending_marks() -> None:
    clock = SimClock(frozen)
    out = Playout(clock)
    out.add_audio(b"\x01" * 8000)
    out.add_mark("a")
    out.add_audio(b"\x02" * 8000)
    out.add_mark("b")
    clock.skip(0.5)
    assert [m.name for m in out.clear()] == ["a", "b"]
    assert 3900 <= len(out.heard) <= 4200
    assert len(out.heard) + out.dropped_bytes == 16000
    assert out.pending_marks == ()
    out.add_audio(b"\x03" * 800)  # plays at once after a clear
    assert out.playing


def test_twiml_parsing_and_local_url() -> None:
    twiml = TwiML.parse(
        '<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="wss://x.example/media">'
        '<Parameter name="token" value="t1" /></Stream></Connect></Response>'
    )
    assert (twiml.stream_url, twiml.parameters) == ("wss://x.example/media", {"token": "t1"})
    assert local_ws_url("http://127.0.0.1:8123", "wss://x.example/media") == "ws://127.0.0.1:8123/media"
    with pytest.raises(ValueError, match="Response"):
        TwiML.parse("<Other/>")


@pytest.mark.realtime
async def test_realtime_playback_echoes_the_mark_after_the_audio_duration(open_bot: Bot) -> None:
    async with TwilioSimulator(open_bot.ws_url) as sim:
        await sim.start()
        await sim.wait_for_audio(len(speech(300)))
        arrived = sim.record.first_audio_at
        echo = await sim.wait_for_echo("greeting", timeout_s=10)
    assert arrived is not None
    assert echo.at - arrived >= 0.28  # after the 300 ms played; a loaded machine can only make it later
    assert not echo.flushed


async def test_records_response_latency_and_barge_in_reaction(open_bot: Bot) -> None:
    async with TwilioSimulator(open_bot.ws_url) as sim:
        await sim.start()
        await sim.wait_for_audio(len(speech(300)))
        barge = await sim.send_utterance(b"\x10" * 800)  # talks over the greeting
        assert barge.over_bot_audio
        await sim.send_dtmf("2")  # the recording handler's stand-in for a barge-in: clear
        await sim.wait_for_clear()
        reply = await sim.send_utterance(b"\x10" * 800)
        assert not reply.over_bot_audio
        await sim.send_dtmf("1")
        await sim.wait_for(lambda: reply.first_audio_at is not None)
    # Spans are checked against the order of the recorded events, never against a wall-clock bound.
    assert sim.record.barge_in_reactions() == [barge.barge_in_reaction]
    assert barge.clear_at is not None
    assert barge.started_at <= barge.clear_at <= reply.started_at  # the clear was awaited before the reply
    assert len(sim.record.response_latencies()) == 2
    assert all(r >= 0 for r in sim.record.response_latencies())
    assert reply.first_audio_at is not None
    assert reply.ended_at is not None
    assert reply.ended_at <= reply.first_audio_at
    assert sim.record.frames_sent == 10


@pytest.mark.realtime
async def test_realtime_sending_paces_frames_on_the_wall_clock(open_bot: Bot) -> None:
    async with TwilioSimulator(open_bot.ws_url) as sim:
        await sim.start()
        handler = await open_bot.factory.for_call(sim.call_sid)
        t0 = time.monotonic()
        await sim.send_silence(200, realtime=True)
        elapsed = time.monotonic() - t0
        await sim.wait_for(lambda: handler.frames == 10)
    assert elapsed >= 0.18  # paced, not sent at once; a loaded machine can only make it slower
    assert sim.clock.skipped == 0
