"""``voicebot connect``: from keys to a ringing phone.

It points the Twilio number at the bot's public URL (both webhooks in one REST request), proves the path
with a signed test request through that URL, and says what changed. Re-running it is safe: a number that
already points here is left alone, and one that points at some other server is only taken over with
``force``. When the test request fails, the number's previous webhooks are put back, so a failed run never
leaves a number pointing at a dead address.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
from twilio.request_validator import RequestValidator

from web.settings import Settings
from web.twilio_numbers import PhoneNumber, TwilioNumbers, TwilioSetupError
from web.twilio_routes import STATUS_PATH, VOICE_PATH

TEST_CALL_SID = "CA" + "0" * 24 + "c0ec7e57"
"""The CallSid of the test request: recognisable in the bot's log, never a real call."""


@dataclass(slots=True)
class ConnectReport:
    phone_number: str
    voice_url: str
    changed: list[str] = field(default_factory=list)
    """What this run changed, one line each; empty when everything already pointed here."""
    test: str = ""


def webhook_urls(public_url: str) -> tuple[str, str]:
    base = public_url.rstrip("/")
    return base + VOICE_PATH, base + STATUS_PATH


def is_ours(number: PhoneNumber) -> bool:
    """Empty, or set up by a previous run (a /voice URL with the /status callback beside it).

    A previous run's tunnel address changes on every start with ngrok's free plan, so "ours" cannot mean
    "the same URL"; a webhook of another shape belongs to someone else's set-up.
    """
    if not number.voice_url:
        return True
    voice = urlsplit(number.voice_url)
    if not voice.path.endswith(VOICE_PATH):
        return False
    base = number.voice_url[: -len(VOICE_PATH)]
    return number.status_callback in ("", base + STATUS_PATH)


async def connect_number(
    settings: Settings, public_url: str, *, force: bool = False, timeout_s: float = 10.0
) -> ConnectReport:
    """Points the number at ``public_url`` and tests it; raises ``TwilioSetupError`` with the fix."""
    voice_url, status_url = webhook_urls(public_url)
    numbers = TwilioNumbers(
        settings.twilio_account_sid,
        settings.twilio_auth_token.get_secret_value(),
        api_base_url=settings.twilio_api_base_url,
        timeout_s=timeout_s,
    )
    try:
        number = await numbers.find(settings.twilio_phone_number)
        report = ConnectReport(number.phone_number, voice_url)
        if number.voice_url == voice_url and number.status_callback == status_url:
            pass
        elif not is_ours(number) and not force:
            raise TwilioSetupError(
                f"{number.phone_number} sends its calls to {number.voice_url}, which is not this bot: "
                "run `voicebot connect --force` to take it over"
            )
        else:
            await numbers.point(number, voice_url, status_url)
            report.changed.append(f"voice webhook: {number.voice_url or '(none)'} -> {voice_url}")
            if number.status_callback != status_url:
                report.changed.append(
                    f"status callback: {number.status_callback or '(none)'} -> {status_url}"
                )
        try:
            report.test = await signed_test_request(settings, voice_url, number.phone_number, timeout_s)
        except TwilioSetupError:
            if report.changed:
                await numbers.point(number, number.voice_url, number.status_callback)
                report.changed.clear()
            raise
        return report
    finally:
        await numbers.aclose()


async def signed_test_request(settings: Settings, voice_url: str, to: str, timeout_s: float) -> str:
    """POSTs to the public /voice as Twilio would (signed), and checks the TwiML opens a media stream."""
    params = {
        "CallSid": TEST_CALL_SID,
        "AccountSid": settings.twilio_account_sid,
        "From": "+10000000000",
        "To": to,
        "CallStatus": "ringing",
        "Direction": "inbound",
    }
    token = settings.twilio_auth_token.get_secret_value()
    signature = RequestValidator(token).compute_signature(voice_url, params)
    try:
        async with httpx.AsyncClient(timeout=timeout_s) as client:
            resp = await client.post(voice_url, data=params, headers={"X-Twilio-Signature": signature})
    except httpx.HTTPError as exc:
        raise TwilioSetupError(
            f"the test request to {voice_url} failed ({type(exc).__name__}): is the bot running and the "
            "tunnel up?"
        ) from None
    if resp.status_code == 403:
        raise TwilioSetupError(
            f"{voice_url} rejected the signed test request (403): the bot runs with another "
            "TWILIO_AUTH_TOKEN or a PUBLIC_URL other than this one"
        )
    if resp.status_code != 200:
        raise TwilioSetupError(f"{voice_url} answered HTTP {resp.status_code}: is that this bot?")
    if "<Stream" not in resp.text:
        raise TwilioSetupError(
            f"{voice_url} answered, but refuses calls (the apology TwiML): see the bot's /ready and log"
        )
    return f"signed test request to {voice_url}: TwiML opens a media stream"
