"""A backstop for a test that hangs where pytest-timeout cannot end it.

pytest-timeout (``timeout`` in pyproject, signal method) fails a test once its time is up by raising in the
main thread, once. A test whose clean-up then hangs too (a server's shutdown waiting for a task that will
never run) sat there with no output, and CI stalled silently. So each test also arms faulthandler's own
C-level timer, which needs neither the GIL nor the main thread: if a test's setup, call and teardown
together outlast its timeout by ``GRACE_S``, every thread's stack goes to the terminal and the process
exits with status 1. CI then fails at once, showing where it hung.
"""

from __future__ import annotations

import faulthandler
import os
import sys
from collections.abc import Generator

import pytest

GRACE_S = 120.0
"""Long enough for pytest-timeout's own failure and an orderly teardown after it."""

_stderr: dict[str, int] = {}


def pytest_configure(config: pytest.Config) -> None:
    # The terminal's stderr, kept before any test's capture can stand in for it.
    _stderr.setdefault("fd", os.dup(sys.__stderr__.fileno() if sys.__stderr__ else 2))


def timeout_of(item: pytest.Item) -> float:
    """The test's pytest-timeout budget: its ``timeout`` marker, else ``--timeout``, else the ini value."""
    marker = item.get_closest_marker("timeout")
    if marker is not None and marker.args:
        return float(marker.args[0])
    given = item.config.getoption("timeout", None)
    if given is not None:
        return float(given)
    return float(item.config.getini("timeout") or 0)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, None, None]:
    budget = timeout_of(item)
    if budget > 0 and "fd" in _stderr:
        faulthandler.dump_traceback_later(budget + GRACE_S, exit=True, file=_stderr["fd"])
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
