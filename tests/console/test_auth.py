from __future__ import annotations

from console.auth import Access, ConsoleAuth


def test_tokens_verify_expire_and_resist_tampering() -> None:
    now = [1000.0]
    auth = ConsoleAuth("secret", ttl_s=60, clock=lambda: now[0])
    token = auth.issue()
    assert auth.verify(token)
    expiry, nonce, mac = token.split(".")
    assert not auth.verify(f"{int(expiry) + 3600}.{nonce}.{mac}")
    assert not auth.verify(token + "0")
    assert not ConsoleAuth("other").verify(token)
    now[0] += 61
    assert not auth.verify(token)


def test_password_check() -> None:
    assert ConsoleAuth("secret").check_password("secret")
    assert not ConsoleAuth("secret").check_password("Secret")
    assert not ConsoleAuth("").check_password("")


def test_access_with_password_needs_the_cookie_wherever_the_client_is() -> None:
    auth = ConsoleAuth("secret")
    assert auth.access(token=None, client_host="127.0.0.1", headers={}) is Access.LOGIN_REQUIRED
    assert auth.access(token=auth.issue(), client_host="203.0.113.9", headers={}) is Access.ALLOWED


def test_without_password_only_direct_loopback_clients_get_in() -> None:
    auth = ConsoleAuth("")
    assert auth.access(token=None, client_host="127.0.0.1", headers={}) is Access.ALLOWED
    assert auth.access(token=None, client_host="::1", headers={}) is Access.ALLOWED
    assert auth.access(token=None, client_host="192.168.1.5", headers={}) is Access.LOCAL_ONLY
    proxied = {"x-forwarded-for": "203.0.113.9"}
    assert auth.access(token=None, client_host="127.0.0.1", headers=proxied) is Access.LOCAL_ONLY
    assert auth.access(token="forged", client_host="203.0.113.9", headers={}) is Access.LOCAL_ONLY
