"""POST /voice and POST /status against the running app, signed as Twilio signs them."""

from __future__ import annotations

import structlog

from simulator.call import TwiML, post_webhook
from tests.edge.conftest import AUTH_TOKEN, PUBLIC_URL, Bot, running_bot
from tests.support.handlers import RecordingFactory

CALL = {
    "AccountSid": "AC" + "1" * 32,
    "CallSid": "CA" + "a" * 32,
    "CallStatus": "ringing",
    "Direction": "inbound",
    "From": "+4917612345678",
    "To": "+4930123456",
}


async def voice(bot: Bot, form: dict[str, str] = CALL, **kw: str) -> TwiML:
    resp = await post_webhook(
        bot.base_url, "/voice", form, public_url=PUBLIC_URL, auth_token=AUTH_TOKEN, **kw
    )
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/xml")
    return TwiML.parse(resp.text)


async def test_voice_answers_a_bidirectional_stream_with_parameters(bot: Bot) -> None:
    twiml = await voice(bot)
    assert "<Connect><Stream" in twiml.xml
    assert "<Start>" not in twiml.xml
    assert twiml.stream_url == "wss://bot.example.com/media"
    assert twiml.status_callback == "https://bot.example.com/status"
    assert twiml.status_callback_method == "POST"
    assert twiml.parameters["caller"] == "+4917612345678"
    assert twiml.parameters["called"] == "+4930123456"
    assert len(twiml.parameters["token"]) >= 20
    assert bot.edge.tokens.outstanding == 1


async def test_each_call_gets_its_own_token(bot: Bot) -> None:
    first = await voice(bot)
    second = await voice(bot, {**CALL, "CallSid": "CA" + "b" * 32})
    assert first.parameters["token"] != second.parameters["token"]


async def test_signature_over_the_internal_url_is_rejected_behind_a_proxy(bot: Bot) -> None:
    # The server sees http://127.0.0.1:<port>/voice; Twilio signed https://bot.example.com/voice.
    with structlog.testing.capture_logs() as logs:
        resp = await post_webhook(
            bot.base_url, "/voice", CALL, public_url=bot.base_url, auth_token=AUTH_TOKEN
        )
    assert resp.status_code == 403
    assert bot.edge.tokens.outstanding == 0
    assert next(e for e in logs if e["event"] == "webhook_signature_invalid")["reason"] == "mismatch"


async def test_missing_and_wrong_signatures_are_403(bot: Bot) -> None:
    with structlog.testing.capture_logs() as logs:
        missing = await post_webhook(bot.base_url, "/voice", CALL)
        wrong = await post_webhook(
            bot.base_url, "/voice", CALL, public_url=PUBLIC_URL, auth_token="not-the-token"
        )
    assert (missing.status_code, wrong.status_code) == (403, 403)
    reasons = [e["reason"] for e in logs if e["event"] == "webhook_signature_invalid"]
    assert reasons == ["missing", "mismatch"]
    assert bot.edge.tokens.outstanding == 0
    assert "<Response>" not in missing.text


async def test_tampered_form_is_rejected(bot: Bot) -> None:
    from simulator.call import signature

    sig = signature(AUTH_TOKEN, PUBLIC_URL + "/voice", CALL)
    import httpx

    async with httpx.AsyncClient(base_url=bot.base_url) as client:
        resp = await client.post(
            "/voice", data={**CALL, "From": "+4915199999999"}, headers={"X-Twilio-Signature": sig}
        )
    assert resp.status_code == 403


async def test_apology_when_at_the_concurrent_call_limit() -> None:
    async with running_bot(max_concurrent_calls=1) as bot:
        first = await voice(bot)
        assert first.stream_url is not None
        with structlog.testing.capture_logs() as logs:
            second = await voice(bot, {**CALL, "CallSid": "CA" + "c" * 32})
    assert second.stream_url is None
    assert second.says
    assert second.says[0][0] == "de-DE"
    assert "Entschuldigung" in second.says[0][1]
    assert second.hangup
    refused = [e for e in logs if e["event"] == "call_refused"]
    assert "concurrent calls" in refused[0]["reasons"][0]


async def test_apology_when_not_ready() -> None:
    async with running_bot(wired=False) as bot:
        twiml = await voice(bot)
    assert twiml.stream_url is None
    assert twiml.hangup
    assert twiml.says[0][0] == "de-DE"


async def test_apology_when_public_url_is_missing() -> None:
    async with running_bot(RecordingFactory(), twilio_auth_token="", public_url="") as bot:
        with structlog.testing.capture_logs() as logs:
            resp = await post_webhook(bot.base_url, "/voice", CALL)
    twiml = TwiML.parse(resp.text)
    assert twiml.stream_url is None
    assert twiml.hangup
    assert any("PUBLIC_URL" in r for e in logs if e["event"] == "call_refused" for r in e["reasons"])


async def test_status_callbacks_are_recorded_for_the_call(bot: Bot) -> None:
    sid = CALL["CallSid"]
    stream_event = {
        "AccountSid": CALL["AccountSid"],
        "CallSid": sid,
        "StreamSid": "MZ" + "1" * 32,
        "StreamEvent": "stream-error",
        "StreamError": "handshake failed",
        "Timestamp": "2026-01-01T10:00:00Z",
    }
    call_event = {**CALL, "CallStatus": "completed", "CallDuration": "42"}
    for form in (stream_event, call_event):
        resp = await post_webhook(bot.base_url, "/status", form, public_url=PUBLIC_URL, auth_token=AUTH_TOKEN)
        assert resp.status_code == 204
    reports = bot.edge.registry.statuses(sid)
    assert [(r.kind, r.status) for r in reports] == [("stream", "stream-error"), ("call", "completed")]
    assert reports[0].fields["StreamError"] == "handshake failed"
    assert reports[1].fields["CallDuration"] == "42"
    assert "From" not in reports[1].fields


async def test_unsigned_status_is_rejected_and_not_recorded(bot: Bot) -> None:
    resp = await post_webhook(bot.base_url, "/status", {**CALL, "CallStatus": "completed"})
    assert resp.status_code == 403
    assert bot.edge.registry.statuses(CALL["CallSid"]) == []
