"""Bot-side control of a live call through Twilio's REST API: hang up, or hand over to a human.

Both work by replacing the call's TwiML (``calls(sid).update(twiml=...)``), which ends the running
``<Connect><Stream>``; Twilio then sends ``stop`` and closes the socket. The SDK runs on its async code
path over an httpx client of ours, so no thread is blocked and ``TWILIO_API_BASE_URL`` can point it at a
loopback fake (the SDK only knows edges and regions of twilio.com, not arbitrary hosts).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http import AsyncHttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

from media.errors import ProviderError
from media.twilio_transport import CloseStream
from web.logging import mask_phone

log = structlog.get_logger()

TWILIO_API = "https://api.twilio.com"
TRANSFER_MESSAGE = "Einen Moment bitte, ich verbinde Sie mit einer Mitarbeiterin oder einem Mitarbeiter."


class _HttpxTwilioClient(AsyncHttpClient):  # type: ignore[misc]
    """The SDK's async HTTP seam, on httpx; rewrites ``https://api.twilio.com`` to ``base_url`` if given."""

    def __init__(self, *, base_url: str = "", timeout_s: float = 5.0) -> None:
        super().__init__(log, True, timeout_s)
        self._base = base_url.rstrip("/")
        self._client = httpx.AsyncClient(timeout=timeout_s)

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the SDK's HttpClient signature, passed to httpx
        allow_redirects: bool = False,
    ) -> Any:
        if self._base and url.startswith(TWILIO_API):
            url = self._base + url[len(TWILIO_API) :]
        resp = await self._client.request(
            method,
            url,
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            follow_redirects=allow_redirects,
        )
        return TwilioResponse(resp.status_code, resp.text, resp.headers)

    async def aclose(self) -> None:
        await self._client.aclose()


class TwilioRest:
    """One SDK client for the whole process (connection pool kept warm); calls are addressed by CallSid."""

    def __init__(
        self, account_sid: str, auth_token: str, *, api_base_url: str = "", timeout_s: float = 5.0
    ) -> None:
        self._http = _HttpxTwilioClient(base_url=api_base_url, timeout_s=timeout_s)
        self._client = Client(account_sid, auth_token, http_client=self._http, environment={})
        self.api_host = urlsplit(api_base_url or TWILIO_API).netloc

    async def update_twiml(self, call_sid: str, twiml: str) -> str:
        """Replaces the call's TwiML; returns the call status Twilio reports. Raises ``ProviderError``."""
        try:
            call = await self._client.calls(call_sid).update_async(twiml=twiml)
        except TwilioRestException as exc:
            status = int(exc.status)
            retryable = status == 429 or status >= 500
            raise ProviderError(
                "twilio_rest", f"HTTP {status} ({exc.code})", retryable=retryable, status=status
            ) from None
        except (TwilioException, httpx.HTTPError) as exc:
            raise ProviderError("twilio_rest", type(exc).__name__, retryable=True) from None
        return str(call.status or "")

    async def aclose(self) -> None:
        await self._http.aclose()


def hangup_twiml() -> str:
    resp = VoiceResponse()
    resp.hangup()
    return str(resp.to_xml(xml_declaration=False))


def transfer_twiml(number: str, message: str = TRANSFER_MESSAGE) -> str:
    resp = VoiceResponse()
    if message:
        resp.say(message, language="de-DE")
    resp.dial(number)
    return str(resp.to_xml(xml_declaration=False))


class TwilioCallControl:
    """``CallControl`` for one call: REST first; if Twilio cannot be reached, hanging up closes the stream."""

    def __init__(
        self, rest: TwilioRest, close_stream: CloseStream, *, transfer_message: str = TRANSFER_MESSAGE
    ) -> None:
        self._rest = rest
        self._close_stream = close_stream
        self._message = transfer_message

    async def hangup(self, call_sid: str) -> None:
        try:
            await self._rest.update_twiml(call_sid, hangup_twiml())
            log.info("call_hangup_requested")
        except ProviderError as exc:
            log.warning("call_hangup_failed", detail=exc.detail, fallback="close_stream")
            await self._close_stream()

    async def transfer(self, call_sid: str, number: str) -> bool:
        if not number:
            log.warning("call_transfer_failed", detail="no transfer number configured")
            return False
        try:
            await self._rest.update_twiml(call_sid, transfer_twiml(number, self._message))
        except ProviderError as exc:
            log.warning("call_transfer_failed", detail=exc.detail, number=mask_phone(number))
            return False
        log.info("call_transferred", number=mask_phone(number))
        return True


class NullCallControl:
    """Without Twilio credentials: hanging up closes the stream (which ends a ``<Connect>`` call)."""

    def __init__(self, close_stream: CloseStream) -> None:
        self._close_stream = close_stream

    async def hangup(self, call_sid: str) -> None:
        log.info("call_hangup_by_closing_stream", detail="no Twilio REST credentials")
        await self._close_stream()

    async def transfer(self, call_sid: str, number: str) -> bool:
        log.warning("call_transfer_unavailable", detail="TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN not set")
        return False
