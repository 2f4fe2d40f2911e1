"""The Alembic migrations build exactly the schema the models describe (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from bot.store.models import Base
from tests.support.db import create_pg_database, drop_pg_database, migrate_strict


@pytest.fixture(params=["sqlite", "postgresql"])
async def bare_url(request: pytest.FixtureRequest, tmp_path):  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'm.sqlite'}"
        return
    url, name = await create_pg_database("finbot_mig")
    try:
        yield url
    finally:
        await drop_pg_database(name)


async def test_migrations_match_models(bare_url: str) -> None:
    await migrate_strict(bare_url)
    db_url = bare_url
    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
            )
            tables = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    finally:
        await engine.dispose()
    assert diff == [], f"models and migrations differ; run `make migration`: {diff}"
    assert set(Base.metadata.tables) <= tables
