"""Suite-wide settings: the transitions library narrates every callback at INFO; tests want our logs only."""

from __future__ import annotations

import logging

logging.getLogger("transitions").setLevel(logging.WARNING)

# A test that hangs past pytest-timeout's failure ends the run loudly instead of stalling it.
pytest_plugins = ("tests.support.watchdog",)


# Real servers, once per session (tests/support/servers.py); imported here so every package can use them.
import uuid  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from tests.support.servers import (  # noqa: E402
    PostgresServer,
    RedisServer,
    create_database,
    postgres_server,
    redis_server,
)


@pytest.fixture(scope="session")
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same store tests on both backends: a fresh SQLite file, or a fresh database on the session's
    PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'sub' / 'calls.sqlite3'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return create_database(server, f"t_{uuid.uuid4().hex[:12]}")
