"""Recording consent in whole calls: the Twilio simulator → the real bot and session → provider fakes.

Off by default (no recorder at all); on, the greeting carries the notice, and an objection by voice or by
keypad deletes the recording at once while the call goes on.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dialogue.events import ProtocolEvent
from dialogue.machine import CallState
from media.recording import recording_path
from simulator.call import place_call
from tests.security.conftest import CALLER
from tests.support.audio import german_speech_ulaw
from tests.support.bot import PUBLIC_URL, running_bot
from web.consent import RECORDING_STOPPED

pytestmark = pytest.mark.timeout(60)

QUESTION = german_speech_ulaw("Guten Tag, ich habe eine Frage.")
NOTICE_START = "Dieses Gespräch wird zur Qualitätssicherung aufgezeichnet"


def _stopped(events: list[ProtocolEvent]) -> list[ProtocolEvent]:
    return [e for e in events if e.name == RECORDING_STOPPED]


async def test_without_record_calls_nothing_is_recorded_and_nothing_announced(tmp_path: Path) -> None:
    async with (
        running_bot(tmp_path) as bot,
        place_call(bot.base_url, public_url=PUBLIC_URL, caller=CALLER) as call,
    ):
        await call.wait_for_audio(timeout_s=15)
        await call.play_out(timeout_s=15)
        session = bot.sessions[0]
        await call.wait_for(lambda: session.state is CallState.LISTENING, timeout_s=15)
        greeting = bot.events.of("transcript", session.call_sid)[0]
        assert NOTICE_START not in greeting.text
    assert not (tmp_path / "recordings").exists()


async def test_voice_objection_stops_and_deletes_the_recording_and_the_call_goes_on(tmp_path: Path) -> None:
    async with running_bot(tmp_path, record_calls=True) as bot:
        bot.behaviour.default_transcript = "Bitte nicht aufzeichnen!"
        async with place_call(bot.base_url, public_url=PUBLIC_URL, caller=CALLER) as call:
            await call.wait_for_audio(timeout_s=15)
            await call.play_out(timeout_s=15)
            session = bot.sessions[0]
            await call.wait_for(lambda: session.state is CallState.LISTENING, timeout_s=15)
            greeting = bot.events.of("transcript", session.call_sid)[0]
            assert NOTICE_START in greeting.text  # told before anything of theirs is kept
            path = recording_path(tmp_path / "recordings", session.call_sid)
            assert path.is_file()
            utt = await call.send_utterance(QUESTION)
            await call.send_silence(800)
            await call.wait_for(
                lambda: bool(_stopped(bot.events.of("protocol", session.call_sid))), timeout_s=15
            )
            assert not path.exists()
            stopped = _stopped(bot.events.of("protocol", session.call_sid))
            assert "voice" in stopped[0].detail
            # the call is not left in silence: the bot still answers the turn
            await call.wait_for(lambda: utt.first_audio_at is not None, timeout_s=15)
            await call.play_out(timeout_s=15)
            system = bot.behaviour.requests_to("chat")[-1].body["messages"][0]["content"]
            assert "Widerspricht er der Aufzeichnung" in system  # so the model confirms it in words
        await call.wait_closed(timeout_s=15)
    assert not path.exists()  # closing the session did not write a new file


async def test_keypad_objection_deletes_the_recording(tmp_path: Path) -> None:
    async with (
        running_bot(tmp_path, record_calls=True, recording_objection_digit="7") as bot,
        place_call(bot.base_url, public_url=PUBLIC_URL, caller=CALLER) as call,
    ):
        await call.wait_for_audio(timeout_s=15)
        await call.play_out(timeout_s=15)
        session = bot.sessions[0]
        path = recording_path(tmp_path / "recordings", session.call_sid)
        await call.send_silence(1200)
        assert path.is_file()
        await call.send_dtmf("5")  # another digit changes nothing
        await call.send_dtmf("7")
        await call.wait_for(lambda: bool(_stopped(bot.events.of("protocol", session.call_sid))), timeout_s=15)
        assert not path.exists()
        digits = [e.detail for e in bot.events.of("protocol", session.call_sid) if e.name == "dtmf"]
        assert digits == ["5", "7"]
        await call.send_silence(200)
        assert session.state is not CallState.HANGUP


async def test_a_call_without_objection_keeps_its_recording(tmp_path: Path) -> None:
    async with running_bot(tmp_path, record_calls=True) as bot:
        async with place_call(bot.base_url, public_url=PUBLIC_URL, caller=CALLER) as call:
            await call.wait_for_audio(timeout_s=15)
            await call.play_out(timeout_s=15)
            session = bot.sessions[0]
            await call.send_silence(1200)
        await call.wait_closed(timeout_s=15)
        await call.wait_for(lambda: session.state is CallState.HANGUP, timeout_s=15)
    path = recording_path(tmp_path / "recordings", session.call_sid)
    assert path.is_file()
    assert path.stat().st_size > 44
    assert not _stopped(bot.events.of("protocol", session.call_sid))
