"""uvicorn's WebSocket protocol with a direct path for the media socket: Twilio's frames reach the call
from the event loop's read callback, without the ASGI queue.

Why: at 200 calls Twilio sends 10,000 messages a second, and uvicorn's general path (the sans-I/O frame
parser, a receive event per message, a queue, a task switch, Litestar's receive) costs 64-74 µs each on the
development machine (``python -m bench.ws_stack``): two thirds of a core before a line of ours runs. A
route that installs a ``DirectReceiver`` before it accepts gets its text frames parsed here (a header, a
mask unmasked in C, UTF-8) and offered to the receiver at once; a receiver that takes the frame returns
True. Everything else keeps uvicorn's path and order: a frame the receiver declines, or any frame while
one is still queued, goes into the ASGI queue for ``receive()``; a frame this parser does not take
(close, continuation, binary, oversize, unmasked, after our close) hands the rest of the stream to
uvicorn's own parser for good, which is at a frame boundary because it has seen no frame since the
handshake. Pings are answered and keepalive pongs checked here, as uvicorn would.

The way out has a direct path too: ``direct_sender(scope)`` gives a route a function that writes a text
message as one unmasked frame straight to the transport (the bot's audio, ten messages a second per
speaking call), instead of Litestar's send, its middleware and uvicorn's ``send`` coroutine. It declines
(returns False, so the route awaits its usual send) whenever uvicorn's own send would do more than write:
before the handshake or after a close, while the transport asks us to stop writing (backpressure), or
with a negotiated extension. Both paths write synchronously when they run, so messages keep their order.

Routes that do not install a receiver (every other WebSocket, and any server without this class) are
served exactly as by uvicorn.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Protocol, cast

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode
from websockets.speedups import apply_mask  # type: ignore[import-not-found, unused-ignore]

DIRECT_RECEIVE: Final = "voicebot.direct_receive"
"""Scope extension: ``scope["extensions"][DIRECT_RECEIVE]["install"](receiver)``, before ``accept``."""

_TEXT_FIN: Final = 0x81
_PING_FIN: Final = 0x89
_PONG_FIN: Final = 0x8A
_MASKED: Final = 0x80
_MAX_CONTROL: Final = 125


class DirectReceiver(Protocol):
    def offer(self, text: str) -> bool:
        """Handles one text message now (True), or declines it (False) so it is queued for ``receive()``."""


def direct_sender(scope: Any) -> Callable[[str], bool] | None:
    """The direct way out for this socket (see the module docstring), or None on a server without it."""
    extension = (scope.get("extensions") or {}).get(DIRECT_RECEIVE)
    if not isinstance(extension, dict):
        return None
    return cast(Callable[[str], bool], extension["send_text"])


def install_direct(scope: Any, receiver: DirectReceiver) -> bool:
    """Asks the server for the direct path; False when it has none (then ``receive()`` gets everything)."""
    extension = (scope.get("extensions") or {}).get(DIRECT_RECEIVE)
    if not isinstance(extension, dict):
        return False
    install = cast(Callable[[DirectReceiver], None], extension["install"])
    install(receiver)
    return True


class MediaSocketProtocol(WebSocketsSansIOProtocol):
    """Passed to uvicorn as ``ws=``; see the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._receiver: DirectReceiver | None = None
        self._direct = False
        self._early = False
        """Frame bytes came before our accept: uvicorn's parser may be inside a frame, so it keeps them."""
        self._rest = b""
        self._plain = False
        """Accepted with no extension: a text frame is the header and the UTF-8 bytes, nothing else."""

    # --- handshake ------------------------------------------------------------------------------------------
    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        if getattr(self, "scope", None) is not None and not self.close_sent:
            extensions = cast(dict[str, Any], self.scope["extensions"])
            extensions[DIRECT_RECEIVE] = {"install": self._install, "send_text": self.send_text_now}

    def _install(self, receiver: DirectReceiver) -> None:
        self._receiver = receiver

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] != "websocket.accept" or not self.handshake_complete or self.close_sent:
            return
        self._plain = "Sec-WebSocket-Extensions" not in self.response.headers
        if self._plain and self._receiver is not None and not self._early and not self.conn.reader.buffer:
            self._direct = True

    def send_text_now(self, text: str) -> bool:
        """Writes ``text`` as one final text frame now; False (nothing written) where uvicorn's send must."""
        if (
            not self._plain
            or self.close_sent
            or self.disconnected
            or not self.writable.is_set()
            or self.transport.is_closing()
        ):
            return False
        payload = text.encode()
        n = len(payload)
        if n < 126:
            head = bytes((_TEXT_FIN, n))
        elif n < 1 << 16:
            head = bytes((_TEXT_FIN, 126)) + n.to_bytes(2, "big")
        else:
            head = bytes((_TEXT_FIN, 127)) + n.to_bytes(8, "big")
        self.transport.write(head + payload)
        return True

    # --- frames ---------------------------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if not self._direct:
            if self.handshake_initiated or not data.endswith(b"\r\n\r\n"):
                self._early = True  # after the request, or in its packet: frame bytes (or a bad request)
            super().data_received(data)
            return
        buf = self._rest + data if self._rest else data
        at, end = 0, len(buf)
        receiver = self._receiver
        assert receiver is not None
        while end - at >= 2:
            b0, b1 = buf[at], buf[at + 1]
            n, head = b1 & 0x7F, 2
            if n == 126:
                if end - at < 4:
                    break
                n, head = int.from_bytes(buf[at + 2 : at + 4], "big"), 4
            if not b1 & _MASKED or n == 127 or self.close_sent or b0 not in (_TEXT_FIN, _PING_FIN, _PONG_FIN):
                self._hand_over(buf[at:])
                return
            if b0 != _TEXT_FIN and n > _MAX_CONTROL:
                self._hand_over(buf[at:])
                return
            start = at + head + 4
            if end < start + n:
                break
            payload = apply_mask(buf[start : start + n], buf[at + head : start])
            if b0 == _TEXT_FIN:
                try:
                    text = payload.decode()
                except UnicodeDecodeError:
                    self._hand_over(buf[at:])  # uvicorn's parser closes with 1007, as without this class
                    return
                if not (self.queue.empty() and receiver.offer(text)):
                    self.queue.put_nowait({"type": "websocket.receive", "text": text})
                    if not self.read_paused:
                        self.read_paused = True
                        self.transport.pause_reading()
            elif b0 == _PING_FIN:
                self.transport.write(bytes((_PONG_FIN, n)) + payload)
            else:
                self.handle_pong(Frame(Opcode.PONG, payload))
            at = start + n
        self._rest = buf[at:] if at < end else b""

    def _hand_over(self, rest: bytes) -> None:
        self._direct = False
        self._rest = b""
        super().data_received(rest)
