"""Secrets and personal data in what the bot prints: log lines (nested values, exception text), and
``voicebot check``."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import structlog
from click.testing import CliRunner

from media.privacy import caller_hash, mask_digit_runs, mask_url_credentials
from tests.security.conftest import CALLER, DB_PASSWORD, OPENAI_KEY, SECRETS, leaks
from web.cli import main


def test_the_leak_check_itself_finds_what_it_looks_for() -> None:
    assert leaks(f"x {OPENAI_KEY} y") == [OPENAI_KEY]
    assert leaks("call from +49 176 1234 5678") == [CALLER]
    assert leaks("masked +49********78") == []
    structlog.get_logger().info("leak_check_ran")


def test_url_credentials_are_masked_once_for_every_scheme() -> None:
    assert mask_url_credentials(f"postgresql+asyncpg://bot:{DB_PASSWORD}@db:5432/calls") == (
        "postgresql+asyncpg://bot:***@db:5432/calls"
    )
    assert mask_url_credentials("redis://:p@ss@cache:6379/0") == "redis://:***@cache:6379/0"
    assert mask_url_credentials("https://example.com/a@b") == "https://example.com/a@b"
    structlog.get_logger().info("masked", url=f"redis://:{DB_PASSWORD}@cache/0")


def test_dictated_numbers_are_masked_and_call_ids_are_not() -> None:
    text = "IBAN DE89 3704 0044 0532 0130 00, Kundennummer 4711 0815 42, Anruf CA0123456789abcdef"
    masked = mask_digit_runs(text)
    assert "3704" not in masked
    assert "0815" not in masked
    assert "CA0123456789abcdef" in masked
    structlog.get_logger().info("transcript", text=text)


def test_nested_values_and_exception_text_are_masked_after_rendering() -> None:
    log = structlog.get_logger()
    log.info(
        "nested",
        request={
            "headers": {"authorization": f"Bearer {OPENAI_KEY}"},
            "urls": [f"postgres://u:{DB_PASSWORD}@h/x"],
        },
        people=[{"caller": CALLER}],
    )
    try:
        raise RuntimeError(
            f"connect failed: postgresql://bot:{DB_PASSWORD}@db/x for {CALLER} key {OPENAI_KEY}"
        )
    except RuntimeError:
        log.exception("provider_failed")
        logging.getLogger("some.library").exception("library saw it too")


def test_caller_hash_is_keyed_and_ignores_formatting() -> None:
    a = caller_hash(b"k" * 32, "+49 176 1234 5678")
    assert a == caller_hash(b"k" * 32, CALLER)
    assert a != caller_hash(b"j" * 32, CALLER)
    assert CALLER.strip("+") not in a
    structlog.get_logger().info("hashed", caller_hash=a)


def test_check_masks_credentials_in_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql://bot:{DB_PASSWORD}@db.internal/calls")
    monkeypatch.setenv("REDIS_URL", f"redis://:{DB_PASSWORD}@cache:6379/0")
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("STT_PROVIDER", "none")
    for args in (["check"], ["check", "--json"]):
        result = CliRunner().invoke(main, ["--env-file", str(tmp_path / "none.env"), *args])
        assert "db.internal" in result.output
        assert not [s for s in SECRETS if s in result.output], args
    report = json.loads(
        CliRunner().invoke(main, ["--env-file", str(tmp_path / "x"), "check", "--json"]).output
    )
    assert report["config"]["database_url"] == "postgresql://bot:***@db.internal/calls"
    structlog.get_logger().info("check_ran")
