"""`finbot keys ...` (key ring, rotation) and `finbot audit ...` (verify, purge) commands."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Coroutine
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from bot.crypto import KeyRing
    from bot.store.db import Database

__all__ = ["app", "audit_app", "keys_app"]

keys_app = typer.Typer(help="Encryption keys: status and rotation.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
app = typer.Typer(help="Data protection.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")


def _database() -> Database:
    from bot.settings import get_settings
    from bot.store import models  # noqa: F401  (every area's tables, for column discovery)
    from bot.store.db import Database

    return Database(get_settings().resolved_database_url())


def _ring() -> KeyRing:
    from bot.crypto import KeyRing, install_keyring
    from bot.settings import get_settings

    ring = KeyRing.load_or_create(get_settings().keys_file)
    install_keyring(ring)
    return ring


def _run(coro: Coroutine[Any, Any, int]) -> int:
    """Run an operator command: a one-line reason on failure (exit 2), never a traceback."""
    try:
        return asyncio.run(coro)
    except Exception as exc:
        from bot.security.masking import mask_text

        first = (str(exc).splitlines() or [""])[0][:200]
        typer.echo(f"failed: {type(exc).__name__}: {mask_text(first)}", err=True)
        return 2


async def _reencrypt(batch_size: int, quiet: bool) -> int:
    from rich.console import Console

    from bot.store.security import reencrypt_all

    console = Console(stderr=True, quiet=quiet)
    ring = _ring()
    db = _database()
    try:
        with console.status("re-encrypting…") as status:

            def progress(table: str, n: int) -> None:
                status.update(f"re-encrypting {table}: +{n} rows")

            report = await reencrypt_all(db, ring, batch_size=batch_size, progress=progress)
    finally:
        await db.close()
    typer.echo(
        f"primary key {ring.primary_id}: {report.reencrypted} values re-encrypted, "
        f"{report.already_current} already current, {report.rows_scanned} rows in "
        f"{len(report.columns)} columns"
    )
    if report.changed_meanwhile:
        typer.echo(
            f"{report.changed_meanwhile} values changed while rotating: run `finbot keys reencrypt` again"
        )
    if report.skipped_tables:
        typer.echo(
            f"tables without a primary key, not re-encrypted: {', '.join(report.skipped_tables)}"
        )
    if report.unreadable:
        typer.echo(
            f"{report.unreadable} values could not be decrypted with any key (left as they are)",
            err=True,
        )
        return 1
    return 0


@keys_app.command("rotate")
def keys_rotate(
    batch_size: int = typer.Option(500, min=1, help="Rows per committed batch."),
    quiet: bool = typer.Option(False, help="No progress display."),
) -> None:
    """Add a new primary key, then re-encrypt every encrypted column of every table with it.

    Running bot processes notice the new key within seconds (they watch the key file) and
    keep reading rows sealed with older keys, which stay in the file."""
    ring = _ring()
    old = ring.primary_id
    new = ring.rotate()
    typer.echo(f"new primary key {new} (was {old})")
    raise typer.Exit(_run(_reencrypt(batch_size, quiet)))


@keys_app.command("reencrypt")
def keys_reencrypt(
    batch_size: int = typer.Option(500, min=1, help="Rows per committed batch."),
    quiet: bool = typer.Option(False, help="No progress display."),
) -> None:
    """Re-encrypt values still under an older key (resume an interrupted rotation)."""
    raise typer.Exit(_run(_reencrypt(batch_size, quiet)))


@keys_app.command("status")
def keys_status() -> None:
    """Key ids, the primary, the key file's permissions and how many values each key protects."""
    from bot.settings import get_settings
    from bot.store.security import key_usage

    path = get_settings().keys_file
    ring = _ring()
    mode = stat.S_IMODE(os.stat(path).st_mode)
    typer.echo(f"key file {path} mode {mode:04o}{'' if mode == 0o600 else '  (should be 0600!)'}")

    async def usage() -> int:
        db = _database()
        try:
            counts = await key_usage(db)
        finally:
            await db.close()
        for kid in ring.key_ids:
            mark = "*" if kid == ring.primary_id else " "
            typer.echo(f"{mark} {kid}  {counts.pop(kid, 0)} values")
        for kid, n in counts.items():
            typer.echo(f"! {kid}  {n} values (key not in the ring)")
        return 1 if counts else 0

    raise typer.Exit(_run(usage()))


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the hash chain: prints OK, or the first bad row (exit 1)."""
    from bot.security.audit import check, count, head_hash

    async def run() -> int:
        db = _database()
        try:
            problem = await check(db)
            n, lo, hi = await count(db)
            tip = await head_hash(db)
        finally:
            await db.close()
        if problem is None:
            span = f", seq {lo}..{hi}" if n else ""
            typer.echo(f"OK: audit chain intact ({n} rows{span})")
            if n:
                typer.echo(f"head hash {tip}")
            return 0
        typer.echo(f"BROKEN: {problem.describe()}")
        return 1

    raise typer.Exit(_run(run()))


@audit_app.command("purge")
def audit_purge(
    older_than_days: int = typer.Option(
        None, help="Delete rows older than this (default FINBOT_AUDIT_RETENTION_DAYS, min 1095)."
    ),
) -> None:
    """Delete audit rows past retention, keeping the rest verifiable (anchor in the head row)."""
    from bot.security.audit import AuditChainError, purge
    from bot.settings import get_settings

    days = older_than_days if older_than_days is not None else get_settings().audit_retention_days

    async def run() -> int:
        _ring()
        db = _database()
        try:
            n = await purge(db, timedelta(days=days))
        except ValueError as exc:
            typer.echo(f"refused: {exc}", err=True)
            return 2
        except AuditChainError as exc:
            typer.echo(f"refused: chain broken before the cut ({exc})", err=True)
            return 1
        finally:
            await db.close()
        typer.echo(f"purged {n} audit rows older than {days} days")
        return 0

    raise typer.Exit(_run(run()))


@audit_app.command("find")
def audit_find(
    party: str = typer.Argument(
        ..., help='An id as callers record it: "C1001", "conversation:42".'
    ),
    limit: int = typer.Option(50, min=1, help="Newest rows to show."),
) -> None:
    """Audit rows about one customer or conversation (the id is pseudonymised the same way)."""
    import json

    from bot.security.audit import entries_for

    async def run() -> int:
        _ring()
        db = _database()
        try:
            rows = await entries_for(db, party, limit=limit)
        finally:
            await db.close()
        for e in rows:
            details = json.dumps(e.details, ensure_ascii=False, sort_keys=True)
            typer.echo(f"{e.seq:>8}  {e.at.isoformat(timespec='seconds')}  {e.kind:<20} {details}")
        if not rows:
            typer.echo("no audit rows")
        return 0

    raise typer.Exit(_run(run()))
