"""Brings a call store's schema to the newest revision with Alembic, on SQLite and PostgreSQL alike.

The store runs this at every start and ``voicebot migrate`` runs it on demand (before a rolling upgrade).
Several instances starting at once take a PostgreSQL advisory lock, or on SQLite an exclusive ``flock`` on a
file beside the database, so one migrates and the rest find the work done. Within one process migrations
also run one at a time, whatever their database: Alembic keeps the running migration in a module-global
``context``, and two of them interleaving on one event loop ran each other's steps.

Databases made before migrations existed (tables from ``create_all``, maybe without
``caller_hash``) are brought to the baseline and stamped, then upgraded like any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import weakref
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

SCRIPTS: Final = Path(__file__).parent / "migrations"
BASELINE: Final = "0001"
MIGRATION_LOCK: Final = 0x766F6963  # any constant shared by every instance ("voic")


def alembic_config(connection: Any) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.attributes["connection"] = connection
    return config


def current_revision(connection: Any) -> str | None:
    revision: str | None = MigrationContext.configure(connection).get_current_revision()
    return revision


def upgrade_sync(connection: Any) -> str:
    """Runs inside the caller's transaction; returns the revision the schema is at afterwards."""
    config = alembic_config(connection)
    tables = set(inspect(connection).get_table_names())
    if "calls" in tables and "alembic_version" not in tables:
        columns = {c["name"] for c in inspect(connection).get_columns("calls")}
        if "caller_hash" not in columns:
            connection.execute(text("ALTER TABLE calls ADD COLUMN caller_hash VARCHAR(64) DEFAULT ''"))
        command.stamp(config, BASELINE)
    command.upgrade(config, "head")
    return current_revision(connection) or ""


_IN_PROCESS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()
"""One lock per event loop (an ``asyncio.Lock`` belongs to the loop it first waited on)."""


async def upgrade(engine: AsyncEngine) -> str:
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its INFO lines say nothing an operator needs
    lock = _IN_PROCESS.setdefault(asyncio.get_running_loop(), asyncio.Lock())
    async with lock:
        return await _upgrade_locked(engine)


async def _upgrade_locked(engine: AsyncEngine) -> str:
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and database != ":memory:":
        async with _file_lock(Path(f"{database}.migrate-lock")):
            return await _upgrade(engine)
    return await _upgrade(engine)


@contextlib.asynccontextmanager
async def _file_lock(path: Path) -> AsyncIterator[None]:
    """Exclusive across processes and across open files of one process; waited for in a thread, so a bot
    holding it on this event loop can finish."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


async def _upgrade(engine: AsyncEngine) -> str:
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        revision: str = await conn.run_sync(upgrade_sync)
        return revision
