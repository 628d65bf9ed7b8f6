"""A loopback stand-in for Twilio's REST ``Calls`` update, reached by the real SDK via TWILIO_API_BASE_URL.

It answers ``POST /2010-04-01/Accounts/{AC}/Calls/{CA}.json`` like Twilio does (basic auth, form body,
a JSON call resource, Twilio's error JSON), records every request, and can be told to fail so tests see
what the bot does when Twilio is down.
"""

from __future__ import annotations

import base64
import json
import re
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl

from fakes.loopback import serve_loopback

_CALL_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<ac>AC\w+)/Calls/(?P<ca>CA\w+)\.json$")


@dataclass(frozen=True, slots=True)
class RestRequest:
    method: str
    path: str
    account_sid: str
    call_sid: str
    form: dict[str, str]


@dataclass(slots=True)
class TwilioRestFake:
    """``async with TwilioRestFake(sid, token) as fake:``, then point the SDK at ``fake.base_url``."""

    account_sid: str
    auth_token: str
    fail_status: int | None = None
    """When set, every call update answers this HTTP status with Twilio's error body."""
    requests: list[RestRequest] = field(default_factory=list)
    base_url: str = ""
    _serving: AbstractAsyncContextManager[int] | None = None

    async def __aenter__(self) -> TwilioRestFake:
        self._serving = serve_loopback(self, name="twilio-rest-fake")
        port = await self._serving.__aenter__()
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._serving is not None:
            await self._serving.__aexit__(exc_type, exc, tb)

    def updates_for(self, call_sid: str) -> list[RestRequest]:
        return [r for r in self.requests if r.call_sid == call_sid]

    # --- the ASGI app ----------------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        status, payload = self._answer(scope, body)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": json.dumps(payload).encode()})

    def _answer(self, scope: dict[str, Any], body: bytes) -> tuple[int, dict[str, Any]]:
        match = _CALL_PATH.match(scope["path"])
        if scope["method"] != "POST" or match is None:
            return 404, _error(404, 20404, "The requested resource was not found")
        headers = dict(scope["headers"])
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        authorized = headers.get(b"authorization", b"").decode() == f"Basic {expected}"
        if not authorized or match["ac"] != self.account_sid:
            return 401, _error(401, 20003, "Authenticate")
        form = dict(parse_qsl(body.decode(), keep_blank_values=True))
        self.requests.append(
            RestRequest("POST", scope["path"], account_sid=match["ac"], call_sid=match["ca"], form=form)
        )
        if self.fail_status is not None:
            return self.fail_status, _error(self.fail_status, 20500, "Simulated failure")
        twiml = form.get("Twiml", "")
        ended = "<Hangup" in twiml or form.get("Status") == "completed"
        return 200, {
            "sid": match["ca"],
            "account_sid": match["ac"],
            "status": "completed" if ended else "in-progress",
            "api_version": "2010-04-01",
            "uri": scope["path"],
        }


def _error(status: int, code: int, message: str) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
