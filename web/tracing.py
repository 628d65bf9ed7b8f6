"""Optional OpenTelemetry traces: one span per call, a child span per answered turn, fed by call events.

Like the metrics, this is an event sink, so no call code knows about tracing. A turn's span runs from the
end of the caller's speech to the end of the bot's answer (or its first audio), with one span event per
stage (transcript, LLM first token, first sentence, TTS first byte, first audio) at the time it happened.
Enabled by ``OTEL_EXPORTER_OTLP_ENDPOINT`` (OTLP over HTTP); needs ``pip install 'voicebot[otel]'``.
"""

from __future__ import annotations

from typing import Any

from dialogue.events import CallEnded, CallError, CallEvent, CallStarted, TurnLatency
from media.errors import ConfigError
from web.context import AppContext

_NS = 1_000_000_000
_STAGES = (
    ("transcript", "transcript_ms"),
    ("llm_first_token", "llm_first_token_ms"),
    ("first_sentence", "first_sentence_ms"),
    ("tts_first_byte", "tts_first_byte_ms"),
    ("first_audio", "first_audio_ms"),
    ("playback_done", "playback_done_ms"),
)


class TraceSink:
    """Keeps one open span per live call; ``publish`` never blocks (the exporter batches in a thread)."""

    def __init__(self, tracer: Any) -> None:
        self._tracer = tracer
        self._calls: dict[str, Any] = {}
        self._started: dict[str, float] = {}

    def publish(self, event: CallEvent) -> None:
        if isinstance(event, CallStarted):
            self._calls[event.call_sid] = self._tracer.start_span(
                "call",
                start_time=int(event.at * _NS),
                attributes={"voicebot.call_sid": event.call_sid, "voicebot.transport": event.transport},
            )
            self._started[event.call_sid] = event.at
            return
        span = self._calls.get(event.call_sid)
        if span is None:
            return
        if isinstance(event, TurnLatency):
            self._turn(span, event, self._started[event.call_sid])
        elif isinstance(event, CallError):
            span.add_event("provider_error", {"stage": event.stage}, timestamp=int(event.at * _NS))
        elif isinstance(event, CallEnded):
            span.set_attribute("voicebot.end_reason", event.reason)
            span.end(end_time=int(event.at * _NS))
            del self._calls[event.call_sid], self._started[event.call_sid]

    def _turn(self, call_span: Any, event: TurnLatency, call_start: float) -> None:
        from opentelemetry import trace

        reached = [(name, getattr(event, attr)) for name, attr in _STAGES if getattr(event, attr) is not None]
        # Published once the answer is played (or the turn ended), so its time minus the last stage is the
        # end of the caller's speech. The stages are on the call's stream clock, which runs ahead of the wall
        # clock only when audio is fast-forwarded (tests): the turn then starts no earlier than its call.
        speech_end = max(event.at - max((ms for _, ms in reached), default=0.0) / 1000, call_start)
        end = max([event.at, *(speech_end + ms / 1000 for _, ms in reached)])
        turn = self._tracer.start_span(
            "turn",
            context=trace.set_span_in_context(call_span),
            start_time=int(speech_end * _NS),
            attributes={"voicebot.turn": event.turn, **{f"voicebot.{n}_ms": ms for n, ms in reached}},
        )
        for name, ms in reached:
            turn.add_event(name, timestamp=int((speech_end + ms / 1000) * _NS))
        turn.end(end_time=int(end * _NS))


class Tracing:
    def __init__(self, provider: Any) -> None:
        self.provider = provider

    def shutdown(self) -> None:
        self.provider.shutdown()


def install_tracing(ctx: AppContext, instance: str) -> Tracing | None:
    endpoint = ctx.settings.otel_exporter_otlp_endpoint
    if not endpoint:
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        raise ConfigError(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is missing: pip install 'voicebot[otel]'"
        ) from None
    resource = Resource.create({"service.name": "voicebot", "service.instance.id": instance})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces"))
    )
    ctx.add_sink(TraceSink(provider.get_tracer("voicebot")))
    return Tracing(provider)
