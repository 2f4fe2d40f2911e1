"""`finbot agent`: create and manage agent console accounts (agents and supervisors)."""

from __future__ import annotations

import asyncio
import sys

import typer

app = typer.Typer(help="Agent console accounts.", no_args_is_help=True)


def _db():  # type: ignore[no-untyped-def]
    from bot.settings import get_settings
    from bot.store.db import Database

    return Database(get_settings().resolved_database_url())


def _read_password(password_stdin: bool, password: str | None = None) -> str:
    if password is not None:
        return password
    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@app.command("add")
def add(
    username: str,
    role: str = typer.Option("agent", help="agent or supervisor"),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="read the password from stdin"),
    password_opt: str | None = typer.Option(
        None, "--password", help="the password itself (scripts such as the demo; visible in the process list)"
    ),
    replace: bool = typer.Option(False, "--replace", help="reset role and password if the account exists"),
) -> None:
    """Create an account; the password is asked for (or read from stdin) and stored as scrypt."""
    from bot.handoff.auth import add_agent

    password = _read_password(password_stdin, password_opt)

    async def run() -> None:
        db = _db()
        try:
            agent = await add_agent(db, username, role, password, replace=replace)
        finally:
            await db.close()
        typer.echo(f"{'set' if replace else 'created'} {agent.role} {agent.username}")

    try:
        asyncio.run(run())
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command("passwd")
def passwd(
    username: str,
    password_stdin: bool = typer.Option(False, "--password-stdin", help="read the password from stdin"),
) -> None:
    """Set a new password (existing console sessions stay until they expire or are disabled)."""
    from bot.handoff.auth import MIN_PASSWORD, hash_password
    from bot.store import handoff as store

    password = _read_password(password_stdin)
    if len(password) < MIN_PASSWORD:
        typer.echo(f"error: password must have at least {MIN_PASSWORD} characters", err=True)
        raise typer.Exit(2)

    async def run() -> bool:
        db = _db()
        try:
            async with db.begin() as s:
                return await store.set_agent_password(s, username, hash_password(password))
        finally:
            await db.close()

    if not asyncio.run(run()):
        typer.echo(f"error: no agent {username!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"password changed for {username}")


@app.command("disable")
def disable(username: str) -> None:
    """Disable an account and end its console sessions."""
    from bot.store import handoff as store

    async def run() -> bool:
        db = _db()
        try:
            async with db.begin() as s:
                return await store.set_agent_active(s, username, False)
        finally:
            await db.close()

    if not asyncio.run(run()):
        typer.echo(f"error: no agent {username!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"disabled {username}")


@app.command("list")
def list_agents() -> None:
    """List the accounts (username, role, active)."""
    from bot.store import handoff as store

    async def run() -> list[store.Agent]:
        db = _db()
        try:
            async with db.begin() as s:
                return await store.list_agents(s)
        finally:
            await db.close()

    for agent in asyncio.run(run()):
        typer.echo(f"{agent.username}\t{agent.role}\t{'active' if agent.active else 'disabled'}")
