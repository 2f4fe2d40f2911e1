"""Alembic, driven from code: `finbot db upgrade` and `make migration` use these."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

HERE = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` (idempotent)."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), revision)


async def upgrade_async(url: str) -> None:
    """The same from async code (Alembic's env runs its own event loop in a thread)."""
    await asyncio.to_thread(upgrade, url)


def autogenerate(url: str, message: str) -> None:
    """Write a new revision from the difference between the models and ``url``."""
    command.revision(alembic_config(url), message=message, autogenerate=True)
