"""``WS /media``: one Twilio media stream per socket, parsed and handed to that call's own session.

Everything about a call lives in one ``MediaStream`` object created for its socket; the only shared state
is the registry's count and the token store. Bad input never ends a call: each malformed message is
counted by reason, the first of each reason is logged, and the loop reads on.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections import Counter
from collections.abc import Callable
from typing import Any

import structlog
from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect

from media.transport import StreamHandler
from media.twilio_messages import Connected, Dtmf, InboundMessage, Mark, Media, Start, Stop, UnknownEvent
from media.twilio_protocol import MAX_MESSAGE_CHARS, MalformedMessage, inbound_audio, parse_inbound
from media.twilio_transport import StreamClosed, TwilioTransport
from web.calls import TwilioEdge
from web.context import AppContext
from web.media_protocol import direct_sender, install_direct
from web.metrics import Metrics
from web.security import SIGNATURE_HEADER
from web.stream_admission import Refused, admit, release
from web.twilio_routes import MEDIA_PATH

log = structlog.get_logger()

POLICY_VIOLATION = 1008


class MediaStream:
    """Reads one socket until ``stop`` or close; owns the call's transport and handler."""

    def __init__(self, ctx: AppContext, edge: TwilioEdge, socket: WebSocket[Any, Any, Any]) -> None:
        self._ctx = ctx
        self._edge = edge
        self._socket = socket
        self._handler: StreamHandler | None = None
        self._transport: TwilioTransport | None = None
        self._start: Start | None = None
        self._last_seq: int | None = None
        self._socket_closed = False
        self._registered = False
        self._closed_by_bot = False
        self._end_reason: str | None = None
        self._slot: int | None = None
        self.problems: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()
        self.sequence_gaps = 0
        self.audio_bytes = 0
        self._busy = True
        """A message from ``receive()`` is being handled: the direct path must queue behind it."""
        self._failed = False
        self._call_context: contextvars.Context | None = None
        self._send_now: Callable[[str], bool] | None = None  # the direct way out (web.media_protocol)

    def offer(self, text: str) -> bool:
        """The direct path (``web.media_protocol``): a caller frame handled from the socket's read callback.

        Runs in the call's own context (its log binding and provider slot, as in this socket's task);
        only when no message from ``receive()`` is in hand, so the order of the stream is kept.
        """
        context = self._call_context
        if self._busy or context is None:
            return False
        try:
            return context.run(self._caller_audio, text)
        except Exception:  # noqa: BLE001 - logged here; ``run`` then ends the call as for any bug
            context.run(log.exception, "stream_failed")
            self._failed = True  # the declined frame wakes ``run``, which ends the call as "error"
            return False

    async def serve(self) -> None:
        """Accepts the socket and reads it until the call ends: what each media route does with its socket.

        The receiver is installed before the accept because the accept is what switches on the hand-parsed
        direct path (``web.media_protocol``), and only for a receiver already there: so that path sees the
        first frame; installed later, every frame of this socket would take uvicorn's queue instead.
        """
        install_direct(self._socket.scope, self)
        await self._socket.accept()
        self._send_now = direct_sender(self._socket.scope)
        await self.run()

    async def run(self) -> None:
        reason = "socket_closed"
        receive = self._socket.receive
        try:
            while True:
                self._busy = False
                message = await receive()
                self._busy = True
                if self._failed:
                    reason = "error"
                    break
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                if not isinstance(text, str):
                    self._problem("binary_frame", "Twilio sends text frames only")
                    continue
                if self._caller_audio(text):
                    continue
                if await self._handle(text):
                    reason = self._end_reason or "stop"
                    break
        except WebSocketDisconnect:
            pass
        except Exception:
            # A bug in the session must end this call cleanly, not leave Twilio streaming into nothing.
            log.exception("stream_failed")
            reason = "error"
        finally:
            if self._closed_by_bot and reason == "socket_closed":
                reason = "bot_closed"
            await self._finish(reason)

    def _caller_audio(self, text: str) -> bool:
        """The message of nearly every 20 ms: a well-formed inbound media frame of this stream, in sequence.

        Handled here in one step (about a third of this class's CPU per frame at 200 calls); anything else,
        a gap in the sequence included, returns False and takes ``_handle``, which checks and counts it.
        """
        handler, start = self._handler, self._start
        if handler is None or start is None or len(text) > MAX_MESSAGE_CHARS:
            return False
        frame = inbound_audio(text)
        if frame is None or self._last_seq is None:
            return False
        sequence, stream_sid, payload = frame
        if stream_sid != start.stream_sid or sequence != self._last_seq + 1:
            return False
        self._last_seq = sequence
        self.counts["media"] += 1
        self.audio_bytes += len(payload)
        handler.on_audio(payload)
        return True

    async def _handle(self, text: str) -> bool:
        """Returns True when the stream is over."""
        try:
            msg = parse_inbound(text)
        except MalformedMessage as exc:
            self._problem(exc.reason, exc.detail)
            return False
        self.counts[msg.event] += 1
        self._check_sequence(msg)
        if isinstance(msg, Start):
            return await self._on_start(msg)
        if isinstance(msg, Connected):
            return False
        if isinstance(msg, UnknownEvent):
            self.counts[f"unknown:{msg.name}"] += 1
            if self.counts[f"unknown:{msg.name}"] == 1:
                log.info("stream_event_unknown", name=msg.name, keys=list(msg.keys))
            return False
        if self._start is None or self._handler is None:
            self._problem(f"{msg.event}_before_start", "no start message yet")
            return isinstance(msg, Stop)
        if msg.stream_sid != self._start.stream_sid:
            self._problem("stream_sid_mismatch", f"{msg.event} for another stream")
            return False
        return await self._dispatch(msg, self._handler)

    async def _dispatch(self, msg: InboundMessage, handler: StreamHandler) -> bool:
        if isinstance(msg, Media):
            if msg.track != "inbound":
                self.counts["media_other_track"] += 1
                return False
            self.audio_bytes += len(msg.payload)
            handler.on_audio(msg.payload)
        elif isinstance(msg, Dtmf):
            log.info("dtmf_received", digit=msg.digit)
            await handler.on_dtmf(msg.digit)
        elif isinstance(msg, Mark):
            await handler.on_mark(msg.name)
        elif isinstance(msg, Stop):
            return True
        return False

    async def _on_start(self, start: Start) -> bool:
        if self._start is not None:
            self._problem("duplicate_start", "a second start on one stream")
            return False
        structlog.contextvars.bind_contextvars(call_sid=start.call_sid, stream_sid=start.stream_sid)
        try:
            live, factory = await admit(self._ctx, self._edge, start)
        except Refused as refused:  # before any session exists: closing the socket ends the call at Twilio
            self._end_reason = f"rejected_{refused.reason}"
            await self._close()
            return True
        self._registered = True
        self._start = start
        metrics = Metrics.of(self._ctx)
        greeted = None if metrics is None else functools.partial(metrics.greeting_started, start.call_sid)
        self._transport = TwilioTransport(
            start.stream_sid, self._send_text, self._close, on_first_audio=greeted
        )
        control = self._edge.call_control(self._close)
        stream_start = start.to_stream_start()
        self._slot = self._ctx.providers.warmup.enter_call()  # before the session starts its tasks
        self._handler = live.handler = factory(self._transport, control, stream_start)
        log.info("stream_started", tracks=list(start.tracks), live_calls=self._edge.registry.active)
        await self._handler.on_start(stream_start)
        self._call_context = contextvars.copy_context()
        return False

    def _check_sequence(self, msg: InboundMessage) -> None:
        seq = getattr(msg, "sequence", None)
        if seq is None:
            return
        if self._last_seq is not None and seq != self._last_seq + 1:
            if seq > self._last_seq:
                self.sequence_gaps += seq - self._last_seq - 1
                self._problem("sequence_gap", f"expected {self._last_seq + 1}, got {seq}")
            else:
                self._problem("sequence_reordered", f"{seq} after {self._last_seq}")
        self._last_seq = seq if self._last_seq is None else max(seq, self._last_seq)

    def _problem(self, reason: str, detail: str) -> None:
        self.problems[reason] += 1
        if self.problems[reason] == 1:
            log.warning("stream_message_rejected", reason=reason, detail=detail)

    async def _send_text(self, text: str) -> None:
        if self._socket_closed:
            raise StreamClosed("the media socket is closed")
        try:
            if self._send_now is None or not self._send_now(text):
                await self._socket.send_text(text)
        except (WebSocketDisconnect, OSError, RuntimeError) as exc:
            self._socket_closed = True
            raise StreamClosed(f"send failed: {type(exc).__name__}") from None

    async def _close(self) -> None:
        """Closing the socket ends a ``<Connect>`` call when no TwiML follows it."""
        if self._socket_closed:
            return
        self._socket_closed = True
        self._closed_by_bot = True
        with contextlib.suppress(WebSocketDisconnect, OSError, RuntimeError):
            await self._socket.close()

    async def _finish(self, reason: str) -> None:
        self._socket_closed = True
        try:
            if self._handler is not None:
                await self._handler.on_stop(reason)
        except Exception:
            log.exception("stream_stop_failed")
        finally:
            await release(self._ctx, self._edge, self._start, registered=self._registered, slot=self._slot)
            stats = self._transport.stats if self._transport else None
            log.info(
                "stream_ended",
                reason=reason,
                messages=dict(self.counts),
                problems=dict(self.problems),
                sequence_gaps=self.sequence_gaps,
                audio_bytes_in=self.audio_bytes,
                bytes_sent=stats.bytes_sent if stats else 0,
                bytes_dropped=stats.bytes_dropped if stats else 0,
            )
            structlog.contextvars.unbind_contextvars("call_sid", "stream_sid")
            if not self._closed_by_bot:
                with contextlib.suppress(WebSocketDisconnect, OSError, RuntimeError):
                    await self._socket.close()


@websocket(MEDIA_PATH)
async def media(socket: WebSocket[Any, Any, Any]) -> None:
    ctx: AppContext = socket.app.state.ctx
    edge = TwilioEdge.of(ctx)
    signature = socket.headers.get(SIGNATURE_HEADER)
    query = socket.scope.get("query_string", b"").decode("latin-1")
    if not edge.signatures.check_upgrade(MEDIA_PATH, query, signature):
        log.warning("media_signature_invalid", reason="missing" if not signature else "mismatch")
        await socket.close(code=POLICY_VIOLATION)  # before accept: the server answers HTTP 403
        return
    await MediaStream(ctx, edge, socket).serve()


ROUTES = [media]
