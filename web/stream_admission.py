"""What a media stream's ``start`` must pass before its call begins, and what the call gives back at its end.

A start is admitted with a valid stream token, a call session to run it, and no other live stream for
its call, on this instance or anywhere in the fleet. ``web.media_ws.MediaStream`` asks ``admit`` once per
stream and calls ``release`` when the stream ends, whatever the reason.
"""

from __future__ import annotations

import contextlib

import structlog

from media.twilio_messages import Start
from web.calls import LiveCall, TwilioEdge
from web.context import AppContext, SessionFactory
from web.drain import drain_of
from web.fleet import FleetCall

log = structlog.get_logger()


class Refused(Exception):
    """The start is not admitted (already logged); the stream ends as ``rejected_<reason>``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def admit(ctx: AppContext, edge: TwilioEdge, start: Start) -> tuple[LiveCall, SessionFactory]:
    """The call this start opens, registered here and with the fleet, and the factory of its session.

    Raises ``Refused`` for a bad token, no session wired, or a call already streaming.
    """
    if not await _token_ok(edge, start):
        raise Refused("token")
    if not start.is_mulaw_8k_mono:
        log.warning("stream_format_unexpected", encoding=start.encoding, rate=start.sample_rate)
    factory = ctx.session_factory
    if factory is None:
        log.error("stream_without_session", detail="no call session is wired")
        raise Refused("not_ready")
    live = LiveCall(call_sid=start.call_sid, stream_sid=start.stream_sid)
    fleet = edge.fleet
    if not edge.registry.register(live):
        log.warning("stream_duplicate_call", detail="a stream for this call is already live")
        raise Refused("duplicate_call")
    shared = FleetCall(start.call_sid, start.stream_sid, fleet.instance, live.started_at)
    if not await fleet.register(shared):
        edge.registry.unregister(start.call_sid)
        log.warning("stream_duplicate_call", detail="a stream for this call is live on another instance")
        raise Refused("duplicate_call")
    return live, factory


async def _token_ok(edge: TwilioEdge, start: Start) -> bool:
    token = start.custom_parameters.get("token")
    if token is None and not edge.signatures.enabled:
        log.warning("stream_token_missing", detail="accepted because signatures are disabled")
        return True
    if await edge.fleet.verify_token(start.call_sid, token):
        return True
    log.warning("stream_token_rejected", reason="missing" if token is None else "mismatch")
    return False


async def release(
    ctx: AppContext, edge: TwilioEdge, start: Start | None, *, registered: bool, slot: int | None
) -> None:
    """Undoes ``admit`` (``start`` is None when nothing was admitted) and frees the call's provider slot;
    then tells a draining instance that one call fewer is live."""
    if start is not None:
        edge.registry.unregister(start.call_sid)
    if slot is not None:
        ctx.providers.warmup.leave_call(slot)
    if registered and start is not None:
        with contextlib.suppress(Exception):  # Redis away: the dead-instance sweep forgets it later
            await edge.fleet.unregister(start.call_sid)
    drain = drain_of(ctx)
    if drain is not None:
        drain.notify()
