"""``/metrics`` in Prometheus text format, fed by the call events every session already publishes.

An event sink (``MetricsSink``) folds events into counters and histograms, so no call code knows about
Prometheus and nothing here is on the per-frame path. The endpoint is guarded like the console: a console
login, or ``Authorization: Bearer $METRICS_TOKEN`` for a scraper. Each process serves its own figures
(label ``instance``); a scraper of a fleet scrapes every instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import time
from collections import OrderedDict
from typing import Any, ClassVar

from litestar import Request, get
from litestar.response import Response
from litestar.status_codes import HTTP_401_UNAUTHORIZED
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from console.auth import Access
from dialogue.events import (
    CallEnded,
    CallError,
    CallEvent,
    CallStarted,
    ProtocolEvent,
    StateChanged,
    TurnDecision,
    TurnLatency,
)
from web.console_routes import console_access
from web.context import AppContext

LATENCY_BUCKETS_S = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 5.0, 10.0)
LAG_INTERVAL_S = 0.5
END_OF_TURN_BUCKETS_S = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0)
GREETING_BUCKETS_S = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.5, 10.0)
MAX_RINGING = 10_000
"""Answered ``/voice`` requests waiting for their stream; beyond this the oldest are forgotten (a call whose
stream never came, or came to another instance, must not grow this process)."""
BUDGET_WORDS = ("budget", "timed out", "within", "stalled")
"""How ``media.budget`` words an expired budget (``no answer within``, ``nothing within``, ``stalled``)."""


class Metrics:
    EXTRAS_KEY: ClassVar[str] = "metrics"

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.live_calls = Gauge("voicebot_live_calls", "Calls running in this process", registry=r)
        self.calls = Counter("voicebot_calls", "Ended calls by outcome (end reason)", ["outcome"], registry=r)
        stage = ("stage",)
        self.latency = Histogram(
            "voicebot_turn_latency_seconds",
            "From the end of the caller's speech to each stage of the reply (voice_to_voice = first audio)",
            stage,
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.barge_ins = Counter("voicebot_barge_ins", "Caller speech onsets over the bot", registry=r)
        self.false_barge_ins = Counter(
            "voicebot_false_barge_ins", "Onsets that were a backchannel or noise (bot resumed)", registry=r
        )
        self.fallbacks = Counter(
            "voicebot_fallbacks", "Provider failures answered by a fallback", stage, registry=r
        )
        self.provider_errors = Counter(
            "voicebot_provider_errors", "Provider failures by stage and kind", ["stage", "kind"], registry=r
        )
        self.loop_lag = Histogram(
            "voicebot_event_loop_lag_seconds",
            "How late a timer fires on the event loop (what every call's audio pacing feels)",
            buckets=(0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0),
            registry=r,
        )
        self.end_of_turn = Histogram(
            "voicebot_end_of_turn_delay_seconds",
            "Silence after the caller's last word until the bot took the turn as over (stream time)",
            buckets=END_OF_TURN_BUCKETS_S,
            registry=r,
        )
        self.first_greeting = Histogram(
            "voicebot_first_greeting_seconds",
            "From answering /voice to the greeting's first audio on the media stream (same instance only)",
            buckets=GREETING_BUCKETS_S,
            registry=r,
        )
        self.underruns = Counter(
            "voicebot_audio_underruns", "Times the caller's playback ran dry mid-reply", registry=r
        )
        self._ringing: OrderedDict[str, float] = OrderedDict()
        self._lag_task: asyncio.Task[None] | None = None

    # --- the greeting's clock: started by /voice, stopped by the stream's first audio ---------------------
    def call_answered(self, call_sid: str, at: float | None = None) -> None:
        self._ringing[call_sid] = time.monotonic() if at is None else at
        while len(self._ringing) > MAX_RINGING:
            self._ringing.popitem(last=False)

    def greeting_started(self, call_sid: str, at: float | None = None) -> None:
        answered = self._ringing.pop(call_sid, None)
        if answered is not None:
            self.first_greeting.observe(max(0.0, (time.monotonic() if at is None else at) - answered))

    def forget(self, call_sid: str) -> None:
        self._ringing.pop(call_sid, None)

    @classmethod
    def of(cls, ctx: AppContext) -> Metrics | None:
        found = ctx.extras.get(cls.EXTRAS_KEY)
        return found if isinstance(found, Metrics) else None

    def render(self) -> bytes:
        return generate_latest(self.registry)

    async def start(self) -> None:
        self._lag_task = asyncio.create_task(self._watch_lag(), name="loop-lag")

    async def stop(self) -> None:
        if self._lag_task is not None:
            self._lag_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lag_task

    async def _watch_lag(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + LAG_INTERVAL_S
            await asyncio.sleep(LAG_INTERVAL_S)
            self.loop_lag.observe(max(0.0, loop.time() - due))


_STAGES = (
    ("stt", "transcript_ms"),
    ("llm_first_token", "llm_first_token_ms"),
    ("first_sentence", "first_sentence_ms"),
    ("tts_first_byte", "tts_first_byte_ms"),
    ("voice_to_voice", "first_audio_ms"),
)


class MetricsSink:
    """The ``EventSink`` that feeds ``Metrics``; publish is a few dictionary look-ups, never awaits."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def publish(self, event: CallEvent) -> None:
        m = self._m
        if isinstance(event, TurnLatency):
            for stage, attr in _STAGES:
                value = getattr(event, attr)
                if value is not None:
                    m.latency.labels(stage).observe(value / 1000.0)
        elif isinstance(event, StateChanged):
            if event.dest == "barge_in":
                m.barge_ins.inc()
            elif event.trigger == "false_barge_in":
                m.false_barge_ins.inc()
        elif isinstance(event, TurnDecision):
            if event.ended and event.waited_ms is not None:
                m.end_of_turn.observe(event.waited_ms / 1000.0)
        elif isinstance(event, ProtocolEvent):
            if event.name == "underrun":
                m.underruns.inc()
        elif isinstance(event, CallError):
            detail = event.detail.lower()
            kind = "timeout" if any(word in detail for word in BUDGET_WORDS) else "error"
            m.provider_errors.labels(event.stage, kind).inc()
            if event.stage in ("stt", "llm", "tts"):
                m.fallbacks.labels(event.stage).inc()
        elif isinstance(event, CallStarted):
            m.live_calls.inc()
        elif isinstance(event, CallEnded):
            m.forget(event.call_sid)
            m.live_calls.dec()
            m.calls.labels(event.reason or "unknown").inc()


def install_metrics(ctx: AppContext) -> Metrics:
    metrics = Metrics()
    ctx.extras[Metrics.EXTRAS_KEY] = metrics
    ctx.add_sink(MetricsSink(metrics))
    return metrics


def _authorized(request: Request[Any, Any, Any], token: str) -> bool:
    header = request.headers.get("authorization", "")
    if token and header.startswith("Bearer "):
        return hmac.compare_digest(header[len("Bearer ") :].encode(), token.encode())
    return console_access(request) is Access.ALLOWED


@get("/metrics", include_in_schema=False)
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    ctx: AppContext = request.app.state.ctx
    if not _authorized(request, ctx.settings.metrics_token.get_secret_value()):
        denied = b"login or bearer token required"
        return Response(denied, status_code=HTTP_401_UNAUTHORIZED, media_type="text/plain")
    found = Metrics.of(ctx)
    body = found.render() if found is not None else b""
    return Response(body, media_type=CONTENT_TYPE_LATEST)


ROUTES = [metrics]
