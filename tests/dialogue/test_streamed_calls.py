"""Whole calls on the streaming transcriber: simulator → bot → the Realtime fake over a real socket (SDK).

``STT_MODE=realtime`` makes the bot transcribe through one socket per call, opened while the phone rang.
The fake answers each commit with the words of the registered clips in the committed audio, so these
tests see which audio went into which commit. As in ``test_end_of_turn``, a test waits for the pause's
verdict before sending more silence: the detector's stream clock decides, not the machine's load.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from dialogue.events import TurnDecision
from dialogue.machine import CallState
from dialogue.session import CallSession
from fakes.behaviour import Fault
from media.turns import TurnConfig
from simulator.call import place_call
from simulator.twilio import TwilioSimulator
from tests.support.audio import german_speech_ulaw
from tests.support.bot import PUBLIC_URL, Bot, running_bot

pytestmark = pytest.mark.timeout(60)

OFFERED_MS = TurnConfig().eager_eot_ms + 60
QUESTION = "Wann haben Sie geöffnet?"


def _decisions(bot: Bot, session: CallSession) -> list[TurnDecision]:
    return list(bot.events.of("turn_decision", session.call_sid))


def _commits(bot: Bot) -> int:
    return sum(
        1 for r in bot.behaviour.requests_to("realtime") if r.body["type"] == "input_audio_buffer.commit"
    )


def _callers(bot: Bot, session: CallSession) -> list[str]:
    return [t.text for t in bot.events.of("transcript", session.call_sid) if t.role == "caller"]


async def _listening_call(bot: Bot, call: TwilioSimulator) -> CallSession:
    await call.wait_for_audio()
    await call.play_out()
    session = bot.sessions[0]
    await call.wait_for(lambda: session.state is CallState.LISTENING, timeout_s=15)
    return session


async def _ask(bot: Bot, call: TwilioSimulator, session: CallSession, clip: bytes, decisions: int) -> None:
    """The caller says ``clip``; the pause is judged; the caller stays silent and the bot answers."""
    await call.send_utterance(clip)
    await call.send_silence(OFFERED_MS)
    await call.wait_for(lambda: len(_decisions(bot, session)) >= decisions, timeout_s=10)
    await call.send_silence(700)
    await call.wait_for(lambda: session.state is CallState.SPEAKING or bool(call.playout.pending_marks))
    await call.play_out()
    await call.wait_for(lambda: session.state is CallState.LISTENING, timeout_s=10)


async def test_a_turn_is_transcribed_on_the_socket_while_the_caller_speaks(tmp_path: Path) -> None:
    clip = german_speech_ulaw(QUESTION)
    async with running_bot(tmp_path, stt_mode="realtime") as bot:
        bot.behaviour.clips.register(QUESTION, clip)
        async with place_call(bot.base_url, public_url=PUBLIC_URL) as call:
            session = await _listening_call(bot, call)
            assert session.stream is not None
            await _ask(bot, call, session, clip, decisions=1)
            assert _callers(bot, session) == [QUESTION]
            [pause, ended] = _decisions(bot, session)
            assert (pause.verdict, ended.verdict) == ("complete", "complete")
            assert session.stream.partials >= 3  # one per word delta, before the final
            assert session.stream.last_partial.strip() == QUESTION
            assert _commits(bot) == 1  # the pause's commit was the turn's; the silence after it was dropped
            assert not bot.behaviour.requests_to("stt")  # no batch upload
            updates = [r for r in bot.behaviour.requests_to("realtime") if r.body["type"] == "session.update"]
            assert len(updates) == 1  # the socket /voice opened while the phone rang
        await call.wait_for(lambda: session.active_tasks() == 0)
        left = [t for t in asyncio.all_tasks() if t.get_name().startswith("stt_realtime")]
        assert not left, left  # hang-up closed the socket and its tasks


async def test_the_parts_of_a_turn_with_a_long_pause_are_joined(tmp_path: Path) -> None:
    fragment_text, rest_text = "Ich rufe an wegen", "der Abschlagszahlung."
    fragment, rest = german_speech_ulaw(fragment_text), german_speech_ulaw(rest_text)
    async with running_bot(tmp_path, stt_mode="realtime") as bot:
        bot.behaviour.clips.register(fragment_text, fragment)
        bot.behaviour.clips.register(rest_text, rest)
        async with place_call(bot.base_url, public_url=PUBLIC_URL) as call:
            session = await _listening_call(bot, call)
            await call.send_utterance(fragment)
            await call.send_silence(OFFERED_MS)
            await call.wait_for(lambda: bool(_decisions(bot, session)), timeout_s=10)
            assert _decisions(bot, session)[0].verdict == "incomplete"
            await call.send_silence(900 - OFFERED_MS)
            await _ask(bot, call, session, rest, decisions=2)
            whole = f"{fragment_text} {rest_text}"
            assert _callers(bot, session) == [whole]
            chat = bot.behaviour.requests_to("chat")
            assert len(chat) == 1
            assert [m["content"] for m in chat[0].body["messages"] if m["role"] == "user"] == [whole]
            assert _commits(bot) == 2  # one per pause, each holding only its own part of the turn
            assert not bot.behaviour.requests_to("stt")


async def test_a_broken_socket_falls_back_to_the_upload_in_the_same_turn(tmp_path: Path) -> None:
    clip = german_speech_ulaw(QUESTION)
    async with running_bot(tmp_path, stt_mode="realtime") as bot:
        bot.behaviour.clips.register(QUESTION, clip)
        async with place_call(bot.base_url, public_url=PUBLIC_URL) as call:
            session = await _listening_call(bot, call)
            bot.behaviour.inject("realtime", Fault.RESET, -1)  # every answer: the socket closes mid-answer
            await _ask(bot, call, session, clip, decisions=1)
            assert _callers(bot, session) == [QUESTION]
            assert len(bot.behaviour.requests_to("stt")) == 1  # the batch upload of the same audio
            assert len(bot.behaviour.requests_to("chat")) == 1
