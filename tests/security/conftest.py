"""The attack suite's shared pieces: secrets that must never appear in a log line, and a guard that checks
every line each attack made.

Each test configures the real logging (JSON lines on stderr, our masker) and, when it ends, the guard reads
everything written and fails on any secret or full caller number. It also requires that something was
logged, so the check cannot pass by capturing nothing.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator

import pytest
import structlog

from web.logging import configure_logging

AUTH_TOKEN = "attack-suite-auth-token-7c1d"
WEBHOOK_KEY = "attack-suite-shared-key-2b9e"
CONSOLE_PASSWORD = "attack-suite-console-pw-41"
SECRET_KEY = "attack-suite-instance-secret-88"
DB_PASSWORD = "attack-suite-db-pw-5150"
OPENAI_KEY = "sk-attack-suite-openai-key"
ELEVENLABS_KEY = "el-attack-suite-key"
CALLER = "+4917612345678"
SECRETS = (AUTH_TOKEN, WEBHOOK_KEY, CONSOLE_PASSWORD, SECRET_KEY, DB_PASSWORD, OPENAI_KEY, ELEVENLABS_KEY)


def leaks(text: str) -> list[str]:
    """Secrets and caller numbers (with or without +, spaced or not) found in ``text``."""
    found = [s for s in SECRETS if s in text]
    digits = re.sub(r"\D", "", CALLER)
    if digits in re.sub(r"[ \-/]", "", text):
        found.append(CALLER)
    return found


@pytest.fixture(autouse=True)
def log_guard() -> Iterator[list[str]]:
    """Yields the list the test's log lines are collected into (filled at teardown). Both structlog's
    lines and the standard library's (uvicorn, Litestar, SDKs) go through the same masking formatter."""
    configure_logging(fmt="json", level="info", secrets=SECRETS)
    buffer = io.StringIO()
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=buffer))
    root = logging.getLogger()
    ours = [h for h in root.handlers if type(h).__name__ == "_StderrHandler"]
    tee = logging.StreamHandler(buffer)
    tee.setFormatter(ours[-1].formatter)
    root.addHandler(tee)
    lines: list[str] = []
    try:
        yield lines
    finally:
        root.removeHandler(tee)
        structlog.reset_defaults()
        lines += buffer.getvalue().splitlines()
    assert lines, "nothing was logged: the leak check would prove nothing"
    bad = [(line[:200], leaks(line)) for line in lines if leaks(line)]
    assert not bad, f"secrets or caller numbers in log lines: {bad[:3]}"
