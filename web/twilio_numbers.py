"""The operator's side of Twilio's REST API: the account, and where its phone numbers send their calls.

Used by ``voicebot connect`` (point a number at the bot) and ``voicebot doctor`` (check the credentials and
the webhook). Every failure becomes a ``TwilioSetupError`` whose detail is one sentence saying what to do,
because the operator reads it on a terminal, not in a stack trace.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from twilio.base.exceptions import TwilioException
from twilio.rest import Client

from media.errors import VoicebotError
from web.call_control import TWILIO_API, _HttpxTwilioClient


class TwilioSetupError(VoicebotError):
    """A REST request about the account or a number failed; ``detail`` says how to fix it."""


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    sid: str
    phone_number: str
    voice_url: str
    status_callback: str


class TwilioNumbers:
    def __init__(
        self, account_sid: str, auth_token: str, *, api_base_url: str = "", timeout_s: float = 10.0
    ) -> None:
        if not account_sid or not auth_token:
            raise TwilioSetupError(
                "set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (Twilio console, Account Info)"
            )
        self._account_sid = account_sid
        self._where = api_base_url or TWILIO_API
        self._timeout_s = timeout_s
        self._http = _HttpxTwilioClient(base_url=api_base_url, timeout_s=timeout_s)
        self._client = Client(account_sid, auth_token, http_client=self._http, environment={})

    async def account_status(self) -> str:
        """The account's status ("active", "suspended", …); proves the credentials."""
        try:
            account = await self._client.api.v2010.accounts(self._account_sid).fetch_async()
        except (TwilioException, httpx.HTTPError) as exc:
            raise self._explain(exc) from None
        return str(account.status or "")

    async def find(self, phone_number: str) -> PhoneNumber:
        """The number ``phone_number`` (E.164), or the only number of the account when it is empty."""
        try:
            if phone_number:
                found = await self._client.incoming_phone_numbers.list_async(phone_number=phone_number)
            else:
                found = await self._client.incoming_phone_numbers.list_async(limit=20)
        except (TwilioException, httpx.HTTPError) as exc:
            raise self._explain(exc) from None
        numbers = [_number(n) for n in found]
        if phone_number and not numbers:
            raise TwilioSetupError(
                f"{phone_number} is not a number of this Twilio account: check TWILIO_PHONE_NUMBER "
                "(E.164, e.g. +4930123456) or buy a number with voice in the Twilio console"
            )
        if not numbers:
            raise TwilioSetupError("this Twilio account has no phone number: buy one with voice capability")
        if len(numbers) > 1:
            listed = ", ".join(n.phone_number for n in numbers)
            raise TwilioSetupError(f"the account has several numbers ({listed}): set TWILIO_PHONE_NUMBER")
        return numbers[0]

    async def point(self, number: PhoneNumber, voice_url: str, status_url: str) -> PhoneNumber:
        """Sets both webhooks in one request, so the number is never left half-changed."""
        try:
            updated = await self._client.incoming_phone_numbers(number.sid).update_async(
                voice_url=voice_url,
                voice_method="POST",
                status_callback=status_url,
                status_callback_method="POST",
            )
        except (TwilioException, httpx.HTTPError) as exc:
            raise self._explain(exc) from None
        return _number(updated)

    async def aclose(self) -> None:
        await self._http.aclose()

    def _explain(self, exc: BaseException) -> TwilioSetupError:
        # A list request that fails raises a plain TwilioException carrying the response ("Unable to fetch
        # page"), not a TwilioRestException: read the status from either.
        page_response = exc.args[1] if isinstance(exc, TwilioException) and len(exc.args) > 1 else None
        status_code = getattr(exc, "status", None) or getattr(page_response, "status_code", None)
        if isinstance(exc, TwilioException) and status_code is not None:
            status = int(status_code)
            if status in (401, 403):
                return TwilioSetupError(
                    f"Twilio refused the credentials (HTTP {status}): check TWILIO_ACCOUNT_SID and "
                    "TWILIO_AUTH_TOKEN in the Twilio console"
                )
            if status == 429:
                return TwilioSetupError(
                    "Twilio is rate-limiting this account (HTTP 429): wait a minute, retry"
                )
            if status == 404:
                return TwilioSetupError("Twilio does not know that number or account (HTTP 404)")
            return TwilioSetupError(f"Twilio answered HTTP {status}: retry later")
        if isinstance(exc, httpx.TimeoutException):
            return TwilioSetupError(
                f"Twilio at {self._where} did not answer within {self._timeout_s:g} s: check the network "
                "or TWILIO_API_BASE_URL"
            )
        if isinstance(exc, httpx.HTTPError):
            return TwilioSetupError(f"cannot reach Twilio at {self._where}: check TWILIO_API_BASE_URL")
        return TwilioSetupError(f"unexpected answer from Twilio: {type(exc).__name__}")


def _number(resource: object) -> PhoneNumber:
    return PhoneNumber(
        sid=str(getattr(resource, "sid", "") or ""),
        phone_number=str(getattr(resource, "phone_number", "") or ""),
        voice_url=str(getattr(resource, "voice_url", "") or ""),
        status_callback=str(getattr(resource, "status_callback", "") or ""),
    )
