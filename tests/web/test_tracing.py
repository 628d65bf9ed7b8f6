"""OpenTelemetry traces of a real call: a ``call`` span, a ``turn`` span inside it with its stages."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from dialogue.machine import CallState
from media.errors import ConfigError
from simulator.call import place_call
from tests.support.audio import german_speech_ulaw
from tests.support.bot import PUBLIC_URL, running_bot
from web.app import create_app
from web.settings import Settings
from web.tracing import TraceSink

QUESTION = german_speech_ulaw("Guten Tag, wann haben Sie heute geöffnet?")


async def test_a_call_is_one_trace_with_a_span_per_turn(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with running_bot(tmp_path) as bot:
        bot.ctx.add_sink(TraceSink(provider.get_tracer("test")))
        async with place_call(bot.base_url, public_url=PUBLIC_URL) as call:
            await call.wait_for_audio()
            await call.play_out()
            session = bot.sessions[0]
            await call.wait_for(lambda: session.state is CallState.LISTENING)
            utt = await call.send_utterance(QUESTION)
            await call.send_silence(800)
            await call.wait_for(lambda: utt.first_audio_at is not None, timeout_s=10)
            await call.play_out()
            await call.wait_for(lambda: bool(bot.events.of("latency")), timeout_s=10)
        await call.wait_for(lambda: bool(bot.events.of("call_ended")))
    spans = {s.name: s for s in exporter.get_finished_spans()}
    call_span, turn = spans["call"], spans["turn"]
    assert turn.parent is not None
    assert turn.parent.span_id == call_span.context.span_id
    assert turn.context.trace_id == call_span.context.trace_id
    assert call_span.attributes is not None
    assert call_span.attributes["voicebot.call_sid"] == session.call_sid
    [latency] = bot.events.of("latency")
    assert turn.attributes is not None
    assert turn.attributes["voicebot.first_audio_ms"] == latency.first_audio_ms
    names = [e.name for e in turn.events]
    assert names.index("transcript") < names.index("first_audio")
    assert call_span.start_time is not None
    assert turn.start_time is not None
    assert call_span.start_time <= turn.start_time


def test_an_endpoint_without_opentelemetry_installed_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    settings = Settings(data_dir=tmp_path, otel_exporter_otlp_endpoint="http://127.0.0.1:4318")
    with pytest.raises(ConfigError, match="voicebot\\[otel\\]"):
        create_app(settings)
