"""Twilio's webhooks: the incoming-call TwiML (``POST /voice``) and status callbacks (``POST /status``).

A call the bot cannot take still gets valid TwiML, a short German apology and a hang-up: an HTTP error
would make Twilio play its own English error message to a German caller.
"""

from __future__ import annotations

import json
from typing import Any

import structlog
from litestar import Request, post
from litestar.exceptions import ClientException, PermissionDeniedException
from litestar.response import Response
from litestar.status_codes import HTTP_413_REQUEST_ENTITY_TOO_LARGE
from twilio.twiml.voice_response import VoiceResponse

from dialogue.events import CallEnded, CallStarted, ProtocolEvent
from web.calls import TwilioEdge
from web.context import AppContext
from web.drain import draining
from web.fleet import STATE_ERRORS
from web.logging import mask_phone
from web.metrics import Metrics
from web.security import SIGNATURE_HEADER, SIGNATURE_SETTINGS_HEADER
from web.stt_prewarm import SttPrewarm

log = structlog.get_logger()

VOICE_PATH = "/voice"
STATUS_PATH = "/status"
MEDIA_PATH = "/media"
APOLOGY = (
    "Entschuldigung, wir können Ihren Anruf gerade nicht entgegennehmen. "
    "Bitte versuchen Sie es später noch einmal. Auf Wiederhören."
)


MAX_BODY = 64 * 1024
"""Twilio's webhook bodies are a few hundred bytes; anything far larger is not Twilio."""


def _json_items(text: str) -> list[tuple[str, str]]:
    """Parsed only after its signature checked out: untrusted JSON is never walked."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise ClientException("the body is not JSON") from None
    if not isinstance(data, dict):
        raise ClientException("the JSON body is not an object")
    return [(str(k), v if isinstance(v, str) else json.dumps(v)) for k, v in data.items()]


async def _signed_form(request: Request[Any, Any, Any], edge: TwilioEdge, path: str) -> dict[str, str]:
    """The fields, once the signature over them checks out; 403 (and a log line) otherwise. Form bodies
    are signed field by field; JSON bodies through ``bodySHA256`` in the URL."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY:
        raise ClientException("request body too large", status_code=HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    query = request.scope.get("query_string", b"").decode("latin-1")
    signature = request.headers.get(SIGNATURE_HEADER)
    settings_header = request.headers.get(SIGNATURE_SETTINGS_HEADER)
    if request.content_type[0] == "application/json":
        try:
            body = (await request.body()).decode("utf-8")
        except UnicodeDecodeError:
            raise ClientException("the body is not UTF-8") from None
        valid = edge.signatures.check_json(path, query, body, signature, settings_header=settings_header)
        items = _json_items(body) if valid else []
    else:
        form = await request.form()
        items = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
        valid = edge.signatures.check_webhook(path, query, items, signature, settings_header=settings_header)
    if not valid:
        log.warning(
            "webhook_signature_invalid",
            path=path,
            reason="missing" if not signature else "mismatch",
            call_sid=dict(items).get("CallSid", ""),
        )
        raise PermissionDeniedException("invalid signature")
    return dict(items)


def _twiml(resp: Any) -> Response[str]:
    return Response(content=str(resp.to_xml()), media_type="text/xml")


def apology_twiml() -> Response[str]:
    resp = VoiceResponse()
    resp.say(APOLOGY, language="de-DE")
    resp.hangup()
    return _twiml(resp)


async def refusal_reasons(ctx: AppContext, edge: TwilioEdge, call_sid: str) -> list[str]:
    """Counts the whole fleet's calls (Redis) against ``MAX_CONCURRENT_CALLS``: the limit is the number's."""
    reasons = []
    if not call_sid:
        reasons.append("no CallSid in the request")
    if not ctx.settings.public_url:
        reasons.append("PUBLIC_URL is not set: the stream URL cannot be built")
    if ctx.session_factory is None:
        reasons.append("no call session is wired: " + (", ".join(ctx.not_ready_reasons()) or "no factory"))
    if draining(ctx):
        reasons.append("this instance is draining (shutting down)")
        return reasons
    # Unsigned, tokens are capped and evicted oldest first (``MAX_UNSIGNED_PENDING``): not capacity.
    pending = await edge.fleet.pending_tokens() if ctx.settings.signatures_enabled else 0
    if await edge.fleet.live_count() + pending >= ctx.settings.max_concurrent_calls:
        reasons.append(f"at the limit of {ctx.settings.max_concurrent_calls} concurrent calls")
    return reasons


@post(VOICE_PATH, status_code=200)
async def voice(request: Request[Any, Any, Any]) -> Response[str]:
    ctx: AppContext = request.app.state.ctx
    edge = TwilioEdge.of(ctx)
    form = await _signed_form(request, edge, VOICE_PATH)
    call_sid = form.get("CallSid", "")
    caller, called = form.get("From", ""), form.get("To", "")
    try:
        reasons = await refusal_reasons(ctx, edge, call_sid)
        token = "" if reasons else await edge.fleet.issue_token(call_sid)
    except STATE_ERRORS as exc:  # shared state (Redis) unreachable: an apology, not Twilio's English error
        reasons = [f"shared state unavailable: {type(exc).__name__}"]
    if reasons:
        log.warning("call_refused", call_sid=call_sid, caller=mask_phone(caller), reasons=reasons)
        if call_sid:  # the call list shows the refused call, ended, with the first reason
            ctx.sink.publish(CallStarted(call_sid=call_sid, caller=mask_phone(caller), transport="twilio"))
            ctx.sink.publish(CallEnded(call_sid=call_sid, reason=("refused: " + reasons[0])[:64]))
        return apology_twiml()
    prewarm = SttPrewarm.of(ctx)
    if prewarm is not None:
        prewarm.ring(call_sid)  # the transcription socket connects while the phone rings
    ctx.providers.warmup.ring()  # and the pooled providers' connections for its first turn
    resp = VoiceResponse()
    connect = resp.connect()
    stream = connect.stream(
        url=edge.signatures.stream_url(MEDIA_PATH),
        status_callback=edge.signatures.public(STATUS_PATH),
        status_callback_method="POST",
    )
    stream.parameter(name="caller", value=caller)
    stream.parameter(name="called", value=called)
    stream.parameter(name="token", value=token)
    log.info("call_incoming", call_sid=call_sid, caller=mask_phone(caller), called=mask_phone(called))
    metrics = Metrics.of(ctx)
    if metrics is not None:
        metrics.call_answered(call_sid)  # the first-greeting clock starts when Twilio gets the TwiML
    return _twiml(resp)


@post(STATUS_PATH, status_code=204)
async def status(request: Request[Any, Any, Any]) -> None:
    ctx: AppContext = request.app.state.ctx
    edge = TwilioEdge.of(ctx)
    form = await _signed_form(request, edge, STATUS_PATH)
    call_sid = form.get("CallSid", "")
    if not call_sid:
        log.warning("status_without_call_sid", keys=sorted(form)[:10])
        return
    report = edge.registry.record_status(call_sid, form)
    if report.kind == "stream" and report.status == "stream-error":
        error = form.get("StreamError", "")
        log.warning("stream_status", call_sid=call_sid, status=report.status, error=error)
    else:
        log.info(f"{report.kind}_status", call_sid=call_sid, status=report.status)
    ctx.sink.publish(ProtocolEvent(call_sid=call_sid, name=f"{report.kind}_status", detail=report.status))


ROUTES = [voice, status]
