"""Signature checks over URLs rebuilt from PUBLIC_URL, and one-time stream tokens."""

from __future__ import annotations

from simulator.call import signature
from web.security import CallTokens, TwilioSignatures

TOKEN = "12345"


def test_twilio_documented_vector_through_our_url_rebuilding() -> None:
    # Twilio's published example: https://mycompany.com/myapp.php?foo=1&bar=2 with these fields.
    sigs = TwilioSignatures(TOKEN, "https://mycompany.com")
    params = [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+12349013030"),
        ("Digits", "1234"),
        ("From", "+12349013030"),
        ("To", "+18005551212"),
    ]
    assert sigs.check_webhook("/myapp.php", "foo=1&bar=2", params, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
    assert not sigs.check_webhook("/myapp.php", "", params, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
    assert not sigs.check_webhook("/myapp.php", "foo=1&bar=2", params[:-1], "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")


def test_stream_url_is_wss_on_the_public_host() -> None:
    assert TwilioSignatures(TOKEN, "https://bot.example.com").stream_url() == "wss://bot.example.com/media"
    assert TwilioSignatures(TOKEN, "https://x.example/bot/").stream_url() == "wss://x.example/bot/media"
    assert TwilioSignatures(TOKEN, "http://localhost:8000").stream_url() == "ws://localhost:8000/media"


def test_upgrade_signature_covers_the_wss_url_with_empty_params() -> None:
    sigs = TwilioSignatures(TOKEN, "https://bot.example.com")
    good = signature(TOKEN, "wss://bot.example.com/media", {})
    assert sigs.check_upgrade("/media", "", good)
    assert not sigs.check_upgrade("/media", "", signature(TOKEN, "https://bot.example.com/media", {}))
    assert not sigs.check_upgrade("/media", "", signature(TOKEN, "ws://127.0.0.1:8000/media", {}))
    assert not sigs.check_upgrade("/media", "", None)
    assert not sigs.check_upgrade("/media", "", signature("other-token", "wss://bot.example.com/media", {}))


def test_without_auth_token_everything_passes_and_says_so() -> None:
    sigs = TwilioSignatures("", "https://bot.example.com")
    assert not sigs.enabled
    assert sigs.check_upgrade("/media", "", None)
    assert sigs.check_webhook("/voice", "", [], None)


def test_with_auth_token_but_no_public_url_nothing_validates() -> None:
    sigs = TwilioSignatures(TOKEN, "")
    assert not sigs.check_webhook("/voice", "", [], signature(TOKEN, "/voice", {}))


class Clock:
    t = 0.0

    def __call__(self) -> float:
        return self.t


def test_tokens_are_one_time_and_per_call() -> None:
    tokens = CallTokens()
    a, b = tokens.issue("CA1"), tokens.issue("CA2")
    assert a != b
    assert tokens.outstanding == 2
    assert not tokens.verify("CA1", b)  # another call's token, and the attempt uses CA1's up
    assert not tokens.verify("CA1", a)
    assert tokens.verify("CA2", b)
    assert not tokens.verify("CA2", b)
    assert tokens.outstanding == 0


def test_tokens_expire() -> None:
    clock = Clock()
    tokens = CallTokens(ttl_s=10, clock=clock)
    tok = tokens.issue("CA1")
    clock.t = 11
    assert tokens.outstanding == 0
    assert not tokens.verify("CA1", tok)


def test_token_store_is_bounded() -> None:
    tokens = CallTokens(max_outstanding=2)
    first = tokens.issue("CA1")
    tokens.issue("CA2")
    tokens.issue("CA3")
    assert tokens.outstanding == 2
    assert not tokens.verify("CA1", first)
