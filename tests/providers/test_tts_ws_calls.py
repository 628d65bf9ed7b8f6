"""Whole calls with ``ELEVENLABS_TRANSPORT=ws``: simulator → bot → the stream-input fake over a real socket.

The greeting and the fixed phrases are synthesized over the socket at start-up, the reply too; a broken
socket is spoken around in the local backup voice exactly as with the HTTP transport, and hang-up leaves
no task of the call and no client socket behind.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from dialogue.machine import CallState
from fakes.behaviour import Fault
from media.tts_elevenlabs_ws import ElevenLabsWebSocketTextToSpeech
from simulator.call import place_call
from tests.providers.test_tts_elevenlabs_ws import _client_socket_tasks
from tests.support.audio import german_speech_ulaw
from tests.support.bot import PUBLIC_URL, running_bot

pytestmark = pytest.mark.timeout(60)

QUESTION = german_speech_ulaw("Wann haben Sie geöffnet?")
SETTINGS = {"elevenlabs_transport": "ws", "tts_first_byte_timeout_s": 0.6}
WS_FAULTS = (Fault.TIMEOUT, Fault.RATE_LIMIT, Fault.SERVER_ERROR, Fault.RESET, Fault.MALFORMED, Fault.REFUSE)


@pytest.mark.parametrize("fault", [None, *WS_FAULTS])
async def test_the_reply_is_spoken_over_the_socket_or_around_it(tmp_path: Path, fault: Fault | None) -> None:
    async with (
        running_bot(tmp_path, **SETTINGS) as bot,
        place_call(bot.base_url, public_url=PUBLIC_URL) as call,
    ):
        assert isinstance(bot.ctx.providers.tts, ElevenLabsWebSocketTextToSpeech)
        await call.wait_for_audio()
        await call.play_out()
        session = bot.sessions[0]
        await call.wait_for(lambda: session.state is CallState.LISTENING, timeout_s=10)
        sockets_before = len(bot.behaviour.requests_to("tts"))
        if fault is not None:
            bot.expected_errors = {"tts"}
            bot.behaviour.inject("tts", fault, count=-1)
        with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
            utt = await call.send_utterance(QUESTION)
            await call.send_silence(700)
            await call.wait_for(lambda: utt.first_audio_at is not None, timeout_s=5)
            while session.state is not CallState.LISTENING:  # play the answer out as it arrives
                await call.wait_for(
                    lambda: session.state is CallState.LISTENING or bool(call.playout.pending_marks)
                )
                await call.play_out()
        bot_said = [t.text for t in bot.events.of("transcript", session.call_sid) if t.role == "bot"][-1]
        assert bot_said.startswith("Gerne helfe ich Ihnen dabei.")
        failures = [e for e in logs if e["event"] == "tts_failed"]
        if fault is None:
            assert not failures
            replies = bot.behaviour.requests_to("tts")[sockets_before:]
            assert replies
            assert all(r.path.endswith("/stream-input") and r.body["completed"] for r in replies)
        else:
            [failure] = failures  # the rest of the reply went to the backup voice without asking again
            assert failure["call_sid"] == session.call_sid
            assert failure["engine"] == "elevenlabs-ws:eleven_flash_v2_5"
        assert session.state is CallState.LISTENING
    assert session.active_tasks() == 0
    assert not _client_socket_tasks()
