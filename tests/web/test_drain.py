"""Graceful drain (what SIGTERM starts): new calls hear the busy TwiML, /ready says 503, a running call
goes on to its end; with the drain budget spent the caller hears the German goodbye, and nothing is left."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from dialogue.machine import CallState
from simulator.call import place_call
from tests.support.audio import german_speech_ulaw
from tests.support.bot import PUBLIC_URL, running_bot
from web.drain import Drain
from web.twilio_routes import APOLOGY

QUESTION = german_speech_ulaw("Guten Tag, wann haben Sie heute geöffnet?")


async def test_a_draining_instance_refuses_new_calls_and_lets_a_running_one_finish(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot, place_call(bot.base_url, public_url=PUBLIC_URL) as call:
        await call.wait_for_audio()
        await call.play_out()
        session = bot.sessions[0]
        await call.wait_for(lambda: session.state is CallState.LISTENING)
        drain = bot.ctx.extras[Drain.EXTRAS_KEY]
        assert isinstance(drain, Drain)
        exited = asyncio.Event()
        drain.begin(exited.set)
        async with httpx.AsyncClient(base_url=bot.base_url) as client:
            ready = await client.get("/ready")
            assert (ready.status_code, ready.json()["ready"]) == (503, False)
            form = {"CallSid": "CAnew", "From": "+4917612345678", "To": "+4930123456"}
            busy = await client.post("/voice", data=form)
            assert APOLOGY.split(".")[0] in busy.text
            assert "<Stream" not in busy.text
        # The running call is still served: a whole turn, answered.
        utt = await call.send_utterance(QUESTION)
        await call.send_silence(800)
        await call.wait_for(lambda: utt.first_audio_at is not None, timeout_s=10)
        await call.play_out()
        assert not exited.is_set()
        await call.hang_up()
        await asyncio.wait_for(exited.wait(), 10)  # woken by the call's end, not by the 60 s budget
    [ended] = bot.events.of("call_ended", session.call_sid)
    assert ended.reason != "drained"
    assert session.active_tasks() == 0


async def test_when_the_drain_budget_is_spent_the_caller_hears_goodbye(tmp_path: Path) -> None:
    async with (
        running_bot(tmp_path, drain_timeout_s=0) as bot,
        place_call(bot.base_url, public_url=PUBLIC_URL) as call,
    ):
        await call.wait_for_audio()
        await call.play_out()
        session = bot.sessions[0]
        await call.wait_for(lambda: session.state is CallState.LISTENING)
        heard_before = len(call.heard_audio())
        drain = bot.ctx.extras[Drain.EXTRAS_KEY]
        assert isinstance(drain, Drain)
        exited = asyncio.Event()
        drain.begin(exited.set)
        await asyncio.wait_for(exited.wait(), 20)
        await call.wait_closed(timeout_s=5)
        assert len(call.heard_audio()) > heard_before  # the goodbye was sent before the hang-up
    transcripts = bot.events.of("transcript", session.call_sid)
    assert transcripts[-1].role == "bot"
    assert "Wiederhören" in transcripts[-1].text
    [ended] = bot.events.of("call_ended", session.call_sid)
    assert ended.reason == "drained"
    assert session.active_tasks() == 0
