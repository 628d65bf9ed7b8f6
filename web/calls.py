"""Live calls of this process: how many there are (for the concurrency limit) and what Twilio said of them.

The registry holds small facts, not the call sessions' state: each session owns its own, so nothing that
belongs to one call is global.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import ClassVar

from media.transport import CallControl, StreamHandler
from media.twilio_transport import CloseStream
from web.call_control import NullCallControl, TwilioCallControl, TwilioRest
from web.context import AppContext
from web.fleet import FleetState, build_fleet
from web.security import CallTokens, TwilioSignatures
from web.settings import Settings


@dataclass(frozen=True, slots=True)
class StatusReport:
    """One status callback: a call status (``CallStatus``) or a stream event (``StreamEvent``)."""

    kind: str
    """``call`` or ``stream``."""
    status: str
    at: float
    fields: dict[str, str]
    """Non-personal fields only (no phone numbers)."""


@dataclass(slots=True)
class LiveCall:
    call_sid: str
    stream_sid: str
    started_at: float = field(default_factory=time.time)
    handler: StreamHandler | None = None
    """The call's session once built: a draining instance says goodbye through it."""


_KEEP_FIELDS = (
    "CallStatus",
    "CallDuration",
    "StreamSid",
    "StreamName",
    "StreamEvent",
    "StreamError",
    "Timestamp",
    "SequenceNumber",
    "CallbackSource",
    "ErrorCode",
)


class CallRegistry:
    def __init__(self, *, history_calls: int = 1000, reports_per_call: int = 20) -> None:
        self._live: dict[str, LiveCall] = {}
        self._reports: OrderedDict[str, deque[StatusReport]] = OrderedDict()
        self._history_calls = history_calls
        self._reports_per_call = reports_per_call

    def register(self, call: LiveCall) -> bool:
        """False when a stream for this CallSid is already live (one stream per call)."""
        if call.call_sid in self._live:
            return False
        self._live[call.call_sid] = call
        return True

    def unregister(self, call_sid: str) -> None:
        self._live.pop(call_sid, None)

    def get(self, call_sid: str) -> LiveCall | None:
        return self._live.get(call_sid)

    @property
    def active(self) -> int:
        return len(self._live)

    def handlers(self) -> list[StreamHandler]:
        return [call.handler for call in self._live.values() if call.handler is not None]

    def record_status(self, call_sid: str, form: dict[str, str]) -> StatusReport:
        """Kept for recent calls too, since ``completed`` arrives after the stream has ended."""
        kind = "stream" if "StreamEvent" in form else "call"
        status = form.get("StreamEvent") if kind == "stream" else form.get("CallStatus")
        report = StatusReport(
            kind=kind,
            status=status or "unknown",
            at=time.time(),
            fields={k: form[k] for k in _KEEP_FIELDS if k in form},
        )
        reports = self._reports.get(call_sid)
        if reports is None:
            reports = self._reports[call_sid] = deque(maxlen=self._reports_per_call)
            while len(self._reports) > self._history_calls:
                self._reports.popitem(last=False)
        reports.append(report)
        return report

    def statuses(self, call_sid: str) -> list[StatusReport]:
        return list(self._reports.get(call_sid, ()))


@dataclass(slots=True)
class TwilioEdge:
    """The Twilio edge's shared collaborators, built once per app and kept on ``AppContext.extras``."""

    signatures: TwilioSignatures
    tokens: CallTokens
    registry: CallRegistry
    rest: TwilioRest | None
    """None without account SID and auth token: call control then falls back to closing the stream."""
    fleet: FleetState
    """Tokens and live calls of every instance (this process alone without ``REDIS_URL``)."""

    EXTRAS_KEY: ClassVar[str] = "twilio_edge"

    @classmethod
    def from_settings(cls, settings: Settings) -> TwilioEdge:
        token = settings.twilio_auth_token.get_secret_value()
        rest = None
        if settings.twilio_account_sid and token:
            rest = TwilioRest(settings.twilio_account_sid, token, api_base_url=settings.twilio_api_base_url)
        # Unsigned, anyone can ask /voice for tokens: keep few, so a flood evicts its own, not capacity.
        tokens = CallTokens(max_outstanding=10_000 if token else settings.max_unsigned_pending)
        return cls(
            signatures=TwilioSignatures(
                token, settings.public_url, shared_key=settings.twilio_webhook_key.get_secret_value()
            ),
            tokens=tokens,
            registry=CallRegistry(),
            rest=rest,
            fleet=build_fleet(settings.redis_url, tokens),
        )

    @classmethod
    def of(cls, ctx: AppContext) -> TwilioEdge:
        edge = ctx.extras.get(cls.EXTRAS_KEY)
        if not isinstance(edge, cls):
            raise RuntimeError("the Twilio edge is not installed on this app")
        return edge

    def install(self, ctx: AppContext) -> None:
        ctx.extras[self.EXTRAS_KEY] = self

    def call_control(self, close_stream: CloseStream) -> CallControl:
        if self.rest is None:
            return NullCallControl(close_stream)
        return TwilioCallControl(self.rest, close_stream)

    async def aclose(self) -> None:
        if self.rest is not None:
            await self.rest.aclose()
        await self.fleet.aclose()
