from __future__ import annotations

import json
import logging

import pytest
import structlog
from structlog.testing import capture_logs

from web.logging import SecretMasker, configure_logging, mask_phone


def test_phone_numbers_are_masked() -> None:
    assert mask_phone("+4930123456") == "+49******56"
    assert "30123" not in mask_phone("+49 30 123456")


def test_masker_hides_secrets_by_key_value_and_phone_shape() -> None:
    masker = SecretMasker(secrets=["sk-live-abcdef"])
    out = masker(
        None,
        "info",
        {
            "event": "x",
            "api_key": "sk-live-abcdef",
            "note": "header was Bearer sk-live-abcdef",
            "caller": "+4930123456",
            "text": "call me at +49 170 1234567 please",
        },
    )
    assert out["api_key"] == "***"
    assert "sk-live-abcdef" not in out["note"]
    assert out["caller"] == "+49******56"
    assert "1234567" not in out["text"]


def test_call_sid_is_bound_through_contextvars() -> None:
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        structlog.contextvars.bind_contextvars(call_sid="CA1", stream_sid="MZ1")
        try:
            structlog.get_logger().info("state_changed", dest="listening")
        finally:
            structlog.contextvars.clear_contextvars()
    assert logs[0]["call_sid"] == "CA1"
    assert logs[0]["stream_sid"] == "MZ1"


def test_json_output_never_contains_keys(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(fmt="json", level="info", secrets=["el-secret-9999"])
    try:
        structlog.get_logger().info(
            "provider_request", url="https://x/?key=el-secret-9999", caller="+4917012345"
        )
        line = capsys.readouterr().err.strip().splitlines()[-1]
    finally:
        structlog.reset_defaults()
    record = json.loads(line)
    assert "el-secret-9999" not in line
    assert "17012345" not in line
    assert record["event"] == "provider_request"


def test_library_lines_get_our_shape_and_masking(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(fmt="json", level="info", secrets=["sk-lib-secret-1"])
    try:
        logging.getLogger("httpx").info('HTTP Request: POST http://127.0.0.1/v1/chat "HTTP/1.1 200 OK"')
        logging.getLogger("somelib").warning("retrying with sk-lib-secret-1 for +49 170 1234567")
        lines = capsys.readouterr().err.strip().splitlines()
    finally:
        structlog.reset_defaults()
    records = [json.loads(line) for line in lines]
    assert [r["logger"] for r in records] == ["somelib"]  # per-request INFO lines of HTTP clients are dropped
    assert records[0]["level"] == "warning"
    assert "sk-lib-secret-1" not in lines[0]
    assert "1234567" not in lines[0]


def test_each_line_is_one_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers share one stderr, unbuffered on a pipe: a line written in two pieces can be split by another
    worker's line (a fleet test lost a ``drain_started`` that way), so each line must be a single write."""
    writes: list[str] = []

    class Recorder:
        def write(self, text: str) -> int:
            writes.append(text)
            return len(text)

        def flush(self) -> None:
            pass

    monkeypatch.setattr("sys.stderr", Recorder())
    configure_logging(fmt="json", level="info")
    try:
        structlog.get_logger().info("drain_started", live_calls=1)
        logging.getLogger("somelib").warning("a library line")
    finally:
        structlog.reset_defaults()
    assert len(writes) == 2
    assert all(w.endswith("\n") and w.count("\n") == 1 for w in writes)
    assert json.loads(writes[0])["event"] == "drain_started"
