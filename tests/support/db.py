"""Throwaway databases for tests: SQLite files and fresh PostgreSQL databases, migrated."""

from __future__ import annotations

import os
import uuid

import asyncpg

PG_ADMIN_DSN = os.environ.get("FINBOT_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_base() -> str:
    # asyncpg DSN → SQLAlchemy URL prefix without the database name.
    rest = PG_ADMIN_DSN.split("://", 1)[1]
    return "postgresql+asyncpg://" + rest.rsplit("/", 1)[0]


async def create_pg_database(prefix: str = "finbot_t") -> tuple[str, str]:
    """A fresh, empty PostgreSQL database; returns (SQLAlchemy URL, name)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=10)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"{_pg_base()}/{name}", name


async def drop_pg_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def pg_available() -> bool:
    try:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


async def migrate(url: str) -> None:
    """Build the bot's schema the way production does: the Alembic migrations only."""
    from bot.store.migrate import upgrade_async

    await upgrade_async(url)


migrate_strict = migrate  # the name the drift test reads best with
