"""``/metrics``: guarded like the console, and fed by the events of real calls."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from dialogue.events import CallError, StateChanged
from dialogue.machine import CallState
from dialogue.table import BARGE_IN_VIEW, Trigger
from simulator.call import place_call
from tests.support.audio import german_speech_ulaw
from tests.support.bot import PUBLIC_URL, running_bot
from web.metrics import Metrics, MetricsSink

QUESTION = german_speech_ulaw("Guten Tag, wann haben Sie heute geöffnet?")
TOKEN = "scrape-token-7c1d"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def test_metrics_need_a_login_or_the_token_and_count_a_real_call(tmp_path: Path) -> None:
    async with (
        running_bot(tmp_path, metrics_token=TOKEN) as bot,
        httpx.AsyncClient(base_url=bot.base_url) as web,
    ):
        assert (await web.get("/metrics")).status_code == 401
        wrong = await web.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        async with place_call(bot.base_url, public_url=PUBLIC_URL) as call:
            await call.wait_for_audio()
            await call.play_out()
            session = bot.sessions[0]
            await call.wait_for(lambda: session.state is CallState.LISTENING)
            live = samples((await web.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})).text)
            assert live[("voicebot_live_calls", ())] == 1
            utt = await call.send_utterance(QUESTION)
            await call.send_silence(800)
            await call.wait_for(lambda: utt.first_audio_at is not None, timeout_s=10)
            await call.play_out()
            await call.wait_for(lambda: session.state is CallState.LISTENING, timeout_s=10)
        await call.wait_closed()
        await call.wait_for(lambda: bool(bot.events.of("call_ended")))
        resp = await web.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    after = samples(resp.text)
    assert after[("voicebot_live_calls", ())] == 0
    [ended] = bot.events.of("call_ended")
    assert after[("voicebot_calls_total", (("outcome", ended.reason),))] == 1
    for stage in ("stt", "llm_first_token", "tts_first_byte", "voice_to_voice"):
        assert after[("voicebot_turn_latency_seconds_count", (("stage", stage),))] == 1
    [latency] = bot.events.of("latency")
    assert after[("voicebot_turn_latency_seconds_sum", (("stage", "voice_to_voice"),))] == (
        latency.first_audio_ms / 1000
    )
    assert ("voicebot_event_loop_lag_seconds_count", ()) in after
    assert TOKEN not in resp.text
    # /voice → greeting: place_call answers /voice first, so the clock ran from the TwiML to the first audio.
    assert after[("voicebot_first_greeting_seconds_count", ())] == 1
    assert after[("voicebot_first_greeting_seconds_sum", ())] > 0
    [ended_turn] = [d for d in bot.events.of("turn_decision") if d.ended]
    assert after[("voicebot_end_of_turn_delay_seconds_count", ())] == 1
    assert after[("voicebot_end_of_turn_delay_seconds_sum", ())] == ended_turn.waited_ms / 1000
    assert after[("voicebot_audio_underruns_total", ())] == 0


async def test_a_reply_whose_speech_arrives_slower_than_real_time_counts_underruns(tmp_path: Path) -> None:
    async with (
        running_bot(tmp_path) as bot,
        place_call(bot.base_url, public_url=PUBLIC_URL) as call,
    ):
        await call.wait_for_audio()
        await call.play_out()
        session = bot.sessions[0]
        await call.wait_for(lambda: session.state is CallState.LISTENING)
        # 100 ms audio chunks 500 ms apart: the 200 ms lead runs dry inside every sentence.
        bot.behaviour.pace("tts", per_token_ms=500)
        utt = await call.send_utterance(QUESTION)
        await call.send_silence(800)
        await call.wait_for(lambda: utt.first_audio_at is not None, timeout_s=10)
        await call.wait_for(lambda: session.voice.playout.underruns >= 2, timeout_s=10)
        # Read together, with no await between: the feed may stutter again at any await.
        stutters = [e for e in bot.events.of("protocol") if e.name == "underrun"]
        metrics = Metrics.of(bot.ctx)
        assert metrics is not None
        found = samples(metrics.render().decode())
    assert len(stutters) >= 2
    assert found[("voicebot_audio_underruns_total", ())] == len(stutters)


def test_barge_ins_false_barge_ins_and_failures_are_counted_from_the_sessions_events() -> None:
    # The names come from the dialogue's own table, so a renamed state or trigger breaks this test.
    metrics = Metrics()
    sink = MetricsSink(metrics)
    sink.publish(
        StateChanged(call_sid="CA1", source="speaking", dest=BARGE_IN_VIEW, trigger="speech_started")
    )
    sink.publish(
        StateChanged(
            call_sid="CA1", source=BARGE_IN_VIEW, dest="speaking", trigger=str(Trigger.SPEECH_DISCARDED)
        )
    )
    sink.publish(
        StateChanged(call_sid="CA1", source="speaking", dest=BARGE_IN_VIEW, trigger="speech_started")
    )
    sink.publish(CallError(call_sid="CA1", stage="tts", detail="no answer within the tts budget"))
    sink.publish(CallError(call_sid="CA1", stage="stt", detail="HTTP 500"))
    sink.publish(CallError(call_sid="CA1", stage="llm", detail="nothing within 1.5 s"))
    found = samples(metrics.render().decode())
    assert found[("voicebot_barge_ins_total", ())] == 2
    assert found[("voicebot_false_barge_ins_total", ())] == 1
    assert found[("voicebot_fallbacks_total", (("stage", "tts"),))] == 1
    assert found[("voicebot_provider_errors_total", (("kind", "timeout"), ("stage", "tts")))] == 1
    assert found[("voicebot_provider_errors_total", (("kind", "error"), ("stage", "stt")))] == 1
    assert found[("voicebot_provider_errors_total", (("kind", "timeout"), ("stage", "llm")))] == 1
