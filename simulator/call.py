"""Placing a call the way Twilio does: POST the incoming-call webhook, read the TwiML, open the stream.

The bot is reached at ``base_url`` (e.g. ``http://127.0.0.1:8000``) while it believes it lives at
``public_url`` (e.g. ``https://bot.example.com``), as behind a tunnel or TLS proxy: signatures are computed
over the public URLs, as Twilio would, and connections go to the real address. Usage::

    async with place_call("http://127.0.0.1:8000", public_url="https://bot.example.com",
                          auth_token=token) as call:
        await call.wait_for_audio()                 # the greeting arrives
        await call.play_out()                       # ...and is heard (fast-forwarded)
        await call.send_utterance(ulaw_speech)      # caller talks, 20 ms frames
        await call.send_silence(800)
        await call.wait_for(lambda: call.record.response_latencies() != [])
    print(call.record.response_latencies(), call.record.violations)
"""

from __future__ import annotations

import contextlib
import functools
import ssl
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import httpx
from twilio.request_validator import RequestValidator

from simulator.twilio import TwilioSimulator, new_sid


@dataclass(frozen=True, slots=True)
class TwiML:
    """The parts of the bot's answer to /voice that Twilio acts on."""

    xml: str
    stream_url: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    status_callback: str | None = None
    status_callback_method: str | None = None
    says: list[tuple[str, str]] = field(default_factory=list)
    """(language, text) of each ``<Say>``."""
    hangup: bool = False

    @classmethod
    def parse(cls, xml: str) -> TwiML:
        root = ET.fromstring(xml)  # noqa: S314 - see the import
        if root.tag != "Response":
            raise ValueError(f"TwiML root is <{root.tag}>, not <Response>")
        stream = root.find("./Connect/Stream")
        params: dict[str, str] = {}
        if stream is not None:
            params = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
        return cls(
            xml=xml,
            stream_url=None if stream is None else stream.get("url"),
            parameters=params,
            status_callback=None if stream is None else stream.get("statusCallback"),
            status_callback_method=None if stream is None else stream.get("statusCallbackMethod"),
            says=[(s.get("language", ""), s.text or "") for s in root.findall("Say")],
            hangup=root.find("Hangup") is not None,
        )


class CallRefused(Exception):
    """The bot answered /voice without a stream (its apology), or with an HTTP error."""

    def __init__(self, status: int, twiml: TwiML | None) -> None:
        said = " ".join(text for _, text in twiml.says) if twiml else ""
        super().__init__(f"HTTP {status}: {said or 'no stream in the TwiML'}")
        self.status = status
        self.twiml = twiml


def signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    return str(RequestValidator(auth_token).compute_signature(url, dict(params)))


async def post_webhook(
    base_url: str,
    path: str,
    form: Mapping[str, str],
    *,
    public_url: str | None = None,
    auth_token: str | None = None,
) -> httpx.Response:
    """POSTs a form as Twilio does, signed over ``public_url + path`` when ``auth_token`` is given."""
    headers = {}
    if auth_token:
        url = (public_url or base_url).rstrip("/") + path
        headers["X-Twilio-Signature"] = signature(auth_token, url, form)
    async with _client(base_url) as client:
        return await client.post(path, data=dict(form), headers=headers)


async def prime(base_url: str) -> None:
    """Pays the simulator's own first-use costs before the first call is timed.

    The first call of a simulator process measured its greeting about 110 ms late, all of it here: the TLS
    context, httpx's and anyio's lazily loaded parts on the first request. A ``GET /health`` loads them;
    its answer does not matter (a bot that is not up yet fails the first call as it would have anyway).
    """
    with contextlib.suppress(httpx.HTTPError):
        async with _client(base_url) as client:
            await client.get("/health")


def _client(base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, timeout=10, verify=_tls_context())


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One context for every call: building one (loading the CA store) took ~10 ms of the simulator's only
    thread per call, enough to delay the 20 ms frames of every other call while two hundred were ringing."""
    return ssl.create_default_context()


def local_ws_url(base_url: str, stream_url: str) -> str:
    """The TwiML's public ``wss://host/path`` → the same path on the bot's real address."""
    base = urlsplit(base_url)
    scheme = "wss" if base.scheme == "https" else "ws"
    return urlunsplit((scheme, base.netloc, urlsplit(stream_url).path, "", ""))


@asynccontextmanager
async def place_call(
    base_url: str,
    *,
    public_url: str | None = None,
    auth_token: str | None = None,
    caller: str = "+4917612345678",
    called: str = "+4930123456",
    call_sid: str | None = None,
    account_sid: str | None = None,
    start: bool = True,
) -> AsyncIterator[TwilioSimulator]:
    """Rings the bot and yields the connected stream; hangs up (``stop``) on exit if still connected."""
    call_sid = call_sid or new_sid("CA")
    account_sid = account_sid or new_sid("AC")
    form = {
        "AccountSid": account_sid,
        "ApiVersion": "2010-04-01",
        "CallSid": call_sid,
        "CallStatus": "ringing",
        "Called": called,
        "Caller": caller,
        "Direction": "inbound",
        "From": caller,
        "To": called,
    }
    rung_at = time.monotonic()
    resp = await post_webhook(base_url, "/voice", form, public_url=public_url, auth_token=auth_token)
    twiml = TwiML.parse(resp.text) if resp.status_code == 200 else None
    if twiml is None or twiml.stream_url is None:
        raise CallRefused(resp.status_code, twiml)
    sim = TwilioSimulator(
        local_ws_url(base_url, twiml.stream_url),
        call_sid=call_sid,
        account_sid=account_sid,
        custom_parameters=twiml.parameters,
        auth_token=auth_token,
        signed_url=twiml.stream_url,
    )
    sim.record.rung_at = rung_at
    await sim.connect()
    try:
        if start:
            await sim.start()
        yield sim
    finally:
        await sim.hang_up()
