"""Attacks on the Twilio edge of a running bot (real session, provider fakes), each with its refusal and a
real signed call afterwards that still gets its greeting. The log-line leak check runs after each."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import httpx
import pytest
from twilio.request_validator import RequestValidator

from media.errors import ConfigError
from simulator.call import TwiML, local_ws_url, place_call, post_webhook
from simulator.twilio import ConnectRejected, TwilioSimulator
from tests.security.conftest import AUTH_TOKEN, CALLER, CONSOLE_PASSWORD, DB_PASSWORD, WEBHOOK_KEY
from tests.support.bot import PUBLIC_URL, Bot, running_bot
from web.app import create_app
from web.calls import TwilioEdge
from web.settings import Settings

pytestmark = pytest.mark.timeout(60)

CALL_FORM = {
    "AccountSid": "AC" + "3" * 32,
    "CallSid": "CA" + "4" * 32,
    "From": CALLER,
    "To": "+4930123456",
    "CallStatus": "ringing",
}


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[Bot]:
    async with running_bot(
        tmp_path,
        twilio_auth_token=AUTH_TOKEN,
        twilio_webhook_key=WEBHOOK_KEY,
        console_password=CONSOLE_PASSWORD,
        database_url="",
    ) as b:
        yield b


async def a_real_call_still_works(bot: Bot) -> None:
    """Other calls are unaffected: a properly signed call is answered and greeted."""
    async with place_call(bot.base_url, public_url=PUBLIC_URL, auth_token=AUTH_TOKEN, caller=CALLER) as call:
        await call.wait_for_audio(timeout_s=15)


async def post(
    bot: Bot, path: str, body: bytes | Mapping[str, str], headers: Mapping[str, str], query: str = ""
) -> int:
    async with httpx.AsyncClient(base_url=bot.base_url) as client:
        url = path + (f"?{query}" if query else "")
        if isinstance(body, bytes):
            resp = await client.post(url, content=body, headers=dict(headers))
        else:
            resp = await client.post(url, data=dict(body), headers=dict(headers))
        return resp.status_code


def sign(key: str, url: str, params: Mapping[str, str], algorithm: str) -> str:
    """Twilio's rule: URL, then each parameter name and value in name order, HMAC'd with the key."""
    text = url + "".join(k + params[k] for k in sorted(params))
    digest = hashlib.sha256 if algorithm == "HMAC_SHA256" else hashlib.sha1
    return base64.b64encode(hmac.new(key.encode(), text.encode(), digest).digest()).decode()


async def test_unsigned_and_mis_signed_webhooks_are_refused(bot: Bot) -> None:
    wrong = RequestValidator("not-the-token").compute_signature(PUBLIC_URL + "/voice", CALL_FORM)
    internal = RequestValidator(AUTH_TOKEN).compute_signature(bot.base_url + "/voice", CALL_FORM)
    for path in ("/voice", "/status"):
        for headers in ({}, {"x-twilio-signature": wrong}, {"x-twilio-signature": internal}):
            assert await post(bot, path, CALL_FORM, headers) == 403, (path, headers)
    # a call id carrying a phone number is logged with the refusal, masked like any other value
    assert await post(bot, "/voice", {**CALL_FORM, "CallSid": CALLER}, {"x-twilio-signature": wrong}) == 403
    tampered = {**CALL_FORM, "From": "+4930999999"}
    good = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_URL + "/voice", CALL_FORM)
    assert await post(bot, "/voice", tampered, {"x-twilio-signature": good}) == 403
    assert TwilioEdge.of(bot.ctx).tokens.outstanding == 0  # no token was issued for any of them
    await a_real_call_still_works(bot)


async def test_sha256_signatures_with_the_shared_key(bot: Bot) -> None:
    url = PUBLIC_URL + "/status"
    form = {**CALL_FORM, "CallStatus": "completed"}
    settings_header = {
        "x-twilio-webhooks-signature-settings": "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256"
    }
    ok = sign(WEBHOOK_KEY, url, form, "HMAC_SHA256")
    assert await post(bot, "/status", form, {"x-twilio-signature": ok, **settings_header}) == 204
    # the same request signed with SHA-1, or with the auth token instead of the shared key, is refused
    sha1 = sign(WEBHOOK_KEY, url, form, "HMAC_SHA1")
    assert await post(bot, "/status", form, {"x-twilio-signature": sha1, **settings_header}) == 403
    token_signed = sign(AUTH_TOKEN, url, form, "HMAC_SHA256")
    assert await post(bot, "/status", form, {"x-twilio-signature": token_signed, **settings_header}) == 403
    unknown = {"x-twilio-webhooks-signature-settings": "key=k,algorithm=HMAC_MD5"}
    assert await post(bot, "/status", form, {"x-twilio-signature": ok, **unknown}) == 403
    await a_real_call_still_works(bot)


async def test_json_bodies_are_checked_through_body_sha256(bot: Bot) -> None:
    body = json.dumps({"CallSid": CALL_FORM["CallSid"], "CallStatus": "completed"}).encode()
    query = "bodySHA256=" + hashlib.sha256(body).hexdigest()
    url = f"{PUBLIC_URL}/status?{query}"
    headers = {
        "content-type": "application/json",
        "x-twilio-signature": sign(AUTH_TOKEN, url, {}, "HMAC_SHA1"),
    }
    assert await post(bot, "/status", body, headers, query) == 204
    tampered = body.replace(b"completed", b"in-progress")
    assert await post(bot, "/status", tampered, headers, query) == 403
    assert await post(bot, "/status", body, headers) == 403  # no bodySHA256: nothing covers the body
    await a_real_call_still_works(bot)


async def test_garbage_and_oversized_bodies_on_webhooks(bot: Bot) -> None:
    signed = {"x-twilio-signature": "bogus"}
    for path in ("/voice", "/status"):
        big = await post(
            bot, path, b"a=" + b"x" * (2 << 20), {"content-type": "application/x-www-form-urlencoded"}
        )
        assert big == 413
        for body, kind in (
            (b"\xff\xfe\x00", "application/x-www-form-urlencoded"),
            (b"{nope", "application/json"),
        ):
            status = await post(bot, path, body, {"content-type": kind, **signed})
            assert 400 <= status < 500, (path, body, status)
    await a_real_call_still_works(bot)


async def test_media_upgrade_unsigned_or_mis_signed_is_refused(bot: Bot) -> None:
    ws_url = local_ws_url(bot.base_url, "wss://x/media")
    for token in (None, "wrong-token"):
        sim = TwilioSimulator(
            ws_url, call_sid="CA" + "5" * 32, auth_token=token, signed_url=PUBLIC_URL + "/media"
        )
        with pytest.raises(ConnectRejected) as refused:
            await sim.connect()
        assert refused.value.status == 403
    await a_real_call_still_works(bot)


async def _stream(bot: Bot, call_sid: str, parameters: dict[str, str]) -> TwilioSimulator:
    sim = TwilioSimulator(
        local_ws_url(bot.base_url, "wss://x/media"),
        call_sid=call_sid,
        custom_parameters=parameters,
        auth_token=AUTH_TOKEN,
        signed_url=PUBLIC_URL.replace("https", "wss") + "/media",
    )
    await sim.connect()
    await sim.start()
    return sim


async def _twiml(bot: Bot, call_sid: str) -> TwiML:
    resp = await post_webhook(
        bot.base_url,
        "/voice",
        {**CALL_FORM, "CallSid": call_sid},
        public_url=PUBLIC_URL,
        auth_token=AUTH_TOKEN,
    )
    return TwiML.parse(resp.text)


async def test_forged_replayed_and_foreign_stream_tokens_are_refused(bot: Bot) -> None:
    first, second = "CA" + "6" * 32, "CA" + "7" * 32
    twiml_a = await _twiml(bot, first)
    await _twiml(bot, second)  # call B has its own token; it is shown call A's
    forged = await _stream(bot, first, {**twiml_a.parameters, "token": "forged"})
    await forged.wait_closed(timeout_s=15)
    foreign = await _stream(bot, second, dict(twiml_a.parameters))  # call A's token on call B
    await foreign.wait_closed(timeout_s=15)
    # a forged or foreign attempt uses the token up: the genuine stream of call A is refused too ...
    replay = await _stream(bot, first, dict(twiml_a.parameters))
    await replay.wait_closed(timeout_s=15)
    assert bot.sessions == []  # no session was ever created for any of them
    # ... so does a replay after a genuine use
    twiml_c = await _twiml(bot, "CA" + "8" * 32)
    genuine = await _stream(bot, "CA" + "8" * 32, dict(twiml_c.parameters))
    await genuine.wait_for_audio(timeout_s=15)
    replayed = await _stream(bot, "CA" + "8" * 32, dict(twiml_c.parameters))
    await replayed.wait_closed(timeout_s=15)
    assert len(bot.sessions) == 1
    await genuine.hang_up()
    await a_real_call_still_works(bot)


async def test_an_unsigned_voice_flood_cannot_refuse_real_calls(tmp_path: Path) -> None:
    async with running_bot(tmp_path, max_unsigned_pending=5, max_concurrent_calls=10) as bot:
        edge = TwilioEdge.of(bot.ctx)
        for n in range(50):
            twiml = await _twiml_unsigned(bot, f"CA{n:032d}")
            assert twiml.stream_url is not None, n  # never the apology
        assert edge.tokens.outstanding == 5
        async with place_call(bot.base_url, public_url=PUBLIC_URL, caller=CALLER) as call:
            await call.wait_for_audio(timeout_s=15)


async def _twiml_unsigned(bot: Bot, call_sid: str) -> TwiML:
    resp = await post_webhook(
        bot.base_url, "/voice", {**CALL_FORM, "CallSid": call_sid}, public_url=PUBLIC_URL
    )
    return TwiML.parse(resp.text)


def test_unsigned_bot_on_a_public_interface_refuses_to_start(tmp_path: Path) -> None:
    import structlog

    structlog.get_logger().info("refusal_check", database_url=f"postgresql://bot:{DB_PASSWORD}@db/calls")
    base = {"stt_provider": "none", "data_dir": tmp_path, "host": "0.0.0.0"}
    with pytest.raises(ConfigError, match="TWILIO_AUTH_TOKEN"):
        create_app(Settings(**base))  # type: ignore[arg-type]
    create_app(Settings(**base, allow_unsigned=True))  # type: ignore[arg-type]
    create_app(Settings(**base, twilio_auth_token=AUTH_TOKEN))  # type: ignore[arg-type]
    create_app(Settings(**{**base, "host": "127.0.0.1"}))  # type: ignore[arg-type]
