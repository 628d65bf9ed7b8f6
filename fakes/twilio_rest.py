"""A loopback stand-in for Twilio's REST API, reached by the real SDK via TWILIO_API_BASE_URL.

It answers ``POST /2010-04-01/Accounts/{AC}/Calls/{CA}.json`` (call update), ``GET …/Accounts/{AC}.json``
(the account) and ``GET``/``POST …/IncomingPhoneNumbers[/{PN}].json`` (list and update the numbers
``voicebot connect`` points at the bot) like Twilio does (basic auth, form body, JSON resources, Twilio's
error JSON), records every request, and can be told to fail so tests see what the bot does when Twilio is
down, slow or refuses.
"""

from __future__ import annotations

import asyncio
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
_ACCOUNT_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<ac>AC\w+)\.json$")
_NUMBERS_PATH = re.compile(
    r"^/2010-04-01/Accounts/(?P<ac>AC\w+)/IncomingPhoneNumbers(?:/(?P<pn>PN\w+))?\.json$"
)


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
    numbers: dict[str, dict[str, str]] = field(default_factory=dict)
    """Incoming phone numbers by PN sid, as Twilio's resource fields (phone_number, voice_url, …)."""
    numbers_fault: int | str | None = None
    """When set, account and number requests answer this HTTP status, or hang if it is "timeout"."""
    base_url: str = ""
    _serving: AbstractAsyncContextManager[int] | None = None
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def __aenter__(self) -> TwilioRestFake:
        self._serving = serve_loopback(self, name="twilio-rest-fake")
        port = await self._serving.__aenter__()
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stopping.set()  # release held requests, so the server stops at once
        if self._serving is not None:
            await self._serving.__aexit__(exc_type, exc, tb)

    def add_number(self, phone_number: str, *, voice_url: str = "", status_callback: str = "") -> str:
        """Puts a number on the account; returns its PN sid."""
        sid = f"PN{len(self.numbers) + 1:032x}"
        self.numbers[sid] = {
            "sid": sid,
            "account_sid": self.account_sid,
            "phone_number": phone_number,
            "friendly_name": phone_number,
            "voice_url": voice_url,
            "voice_method": "POST",
            "status_callback": status_callback,
            "status_callback_method": "POST",
        }
        return sid

    def number_updates(self) -> list[RestRequest]:
        return [r for r in self.requests if "/IncomingPhoneNumbers/" in r.path]

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
        if self.numbers_fault == "timeout" and "/Calls/" not in scope["path"]:
            await self._stopping.wait()  # never answers: the client's timeout decides
            return
        status, payload = self._answer(scope, body)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": json.dumps(payload).encode()})

    def _authorized(self, scope: dict[str, Any], account_sid: str) -> bool:
        headers = dict(scope["headers"])
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        given = headers.get(b"authorization", b"").decode()
        return given == f"Basic {expected}" and account_sid == self.account_sid

    def _answer(self, scope: dict[str, Any], body: bytes) -> tuple[int, dict[str, Any]]:
        path, method = scope["path"], scope["method"]
        for pattern in (_ACCOUNT_PATH, _NUMBERS_PATH):
            found = pattern.match(path)
            if found is not None:
                if not self._authorized(scope, found["ac"]):
                    return 401, _error(401, 20003, "Authenticate")
                if isinstance(self.numbers_fault, int):
                    return self.numbers_fault, _error(self.numbers_fault, 20429, "Simulated failure")
                form = dict(parse_qsl(body.decode(), keep_blank_values=True))
                query = dict(parse_qsl(scope.get("query_string", b"").decode()))
                recorded = RestRequest(method, path, account_sid=found["ac"], call_sid="", form=form)
                self.requests.append(recorded)
                if pattern is _ACCOUNT_PATH:
                    return 200, {"sid": found["ac"], "friendly_name": "Test account", "status": "active"}
                return self._numbers(method, found["pn"], form, query, path)
        match = _CALL_PATH.match(path)
        if method != "POST" or match is None:
            return 404, _error(404, 20404, "The requested resource was not found")
        if not self._authorized(scope, match["ac"]):
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

    def _numbers(
        self, method: str, sid: str | None, form: dict[str, str], query: dict[str, str], path: str
    ) -> tuple[int, dict[str, Any]]:
        if sid is None:
            if method != "GET":
                return 405, _error(405, 20004, "Method not allowed")
            wanted = query.get("PhoneNumber")
            records = [n for n in self.numbers.values() if wanted in (None, n["phone_number"])]
            return 200, _numbers_page(records, path)
        number = self.numbers.get(sid)
        if number is None:
            return 404, _error(404, 20404, f"The requested resource {path} was not found")
        if method == "POST":
            unknown = set(form) - set(FIELDS)
            if unknown:
                return 400, _error(400, 21200, f"Unknown parameters: {sorted(unknown)}")
            for key, value in form.items():
                number[FIELDS[key]] = value
        return 200, dict(number)


FIELDS = {
    "VoiceUrl": "voice_url",
    "VoiceMethod": "voice_method",
    "StatusCallback": "status_callback",
    "StatusCallbackMethod": "status_callback_method",
}
"""Form parameters of a number update and the resource fields they set."""


def _error(status: int, code: int, message: str) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def _numbers_page(records: list[dict[str, str]], path: str) -> dict[str, Any]:
    return {
        "incoming_phone_numbers": records,
        "uri": path,
        "first_page_uri": path,
        "next_page_uri": None,
        "previous_page_uri": None,
        "page": 0,
        "page_size": 50,
        "start": 0,
        "end": max(len(records) - 1, 0),
    }
