from __future__ import annotations

from console.auth import Access, ConsoleAuth, LoginThrottle


def test_tokens_verify_expire_and_resist_tampering() -> None:
    now = [1000.0]
    auth = ConsoleAuth("secret", secret_key=b"k" * 32, ttl_s=60, clock=lambda: now[0])
    token = auth.issue()
    assert auth.verify(token)
    expiry, nonce, mac = token.split(".")
    assert not auth.verify(f"{int(expiry) + 3600}.{nonce}.{mac}")
    assert not auth.verify(token + "0")
    assert not ConsoleAuth("other", secret_key=b"k" * 32).verify(token)
    assert not ConsoleAuth("secret", secret_key=b"j" * 32).verify(token)  # the key is not the password's
    now[0] += 61
    assert not auth.verify(token)


def test_a_revoked_cookie_is_not_accepted_again() -> None:
    auth = ConsoleAuth("secret", secret_key=b"k" * 32)
    token = auth.issue()
    auth.revoke(token)
    assert not auth.verify(token)
    assert auth.verify(auth.issue())


def test_password_check() -> None:
    assert ConsoleAuth("secret").check_password("secret")
    assert not ConsoleAuth("secret").check_password("Secret")
    assert not ConsoleAuth("").check_password("")


def test_without_password_the_start_up_token_is_the_credential() -> None:
    auth = ConsoleAuth("", access_token="tok-123456")
    assert auth.check_password("tok-123456")
    assert not auth.check_password("")
    assert ConsoleAuth("").access_token != ConsoleAuth("").access_token  # a fresh one per start


def test_access_needs_the_cookie_wherever_the_client_is() -> None:
    auth = ConsoleAuth("")
    assert auth.access(token=None) is Access.LOGIN_REQUIRED
    assert auth.access(token="forged") is Access.LOGIN_REQUIRED
    assert auth.access(token=auth.issue()) is Access.ALLOWED


def test_throttle_counts_failures_per_client_within_the_window() -> None:
    now = [0.0]
    throttle = LoginThrottle(limit=3, window_s=60, clock=lambda: now[0])
    for _ in range(3):
        assert throttle.retry_after("a") == 0
        throttle.failed("a")
    assert throttle.retry_after("a") == 60
    assert throttle.retry_after("b") == 0  # other clients are not affected
    now[0] = 30
    assert throttle.retry_after("a") == 30
    now[0] = 60.5
    assert throttle.retry_after("a") == 0
    throttle.failed("b")
    throttle.succeeded("b")
    assert throttle.retry_after("b") == 0
