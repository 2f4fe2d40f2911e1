"""The `finbot` command: serve, demo, sandbox, nlu, chat, keys, audit, agent, db."""

from __future__ import annotations

import importlib
import sys

import typer

app = typer.Typer(help="finbot: the customer front end of a wealth-management platform.",
                  no_args_is_help=True, add_completion=False)
sandbox_app = typer.Typer(help="The reference platform (sandbox).", no_args_is_help=True)
db_app = typer.Typer(help="The bot's database.", no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(db_app, name="db")

# Sub-commands that live with their area: (module, attribute, name).
_AREAS = [
    ("bot.cli.nlu", "app", "nlu"),
    ("bot.cli.security", "keys_app", "keys"),
    ("bot.cli.security", "audit_app", "audit"),
    ("bot.cli.agent", "app", "agent"),
]
for _module, _attr, _name in _AREAS:
    app.add_typer(getattr(importlib.import_module(_module), _attr), name=_name)


@app.command()
def serve() -> None:
    """Run the bot (web chat, REST, Telegram, events, agent console) on FINBOT_PORT."""
    from aiohttp import web

    from bot.app import create_app
    from bot.logsetup import configure_logging
    from bot.settings import get_settings
    from bot.store.migrate import upgrade

    settings = get_settings()
    configure_logging(settings.log_level)
    upgrade(settings.resolved_database_url())
    web.run_app(create_app(settings), host=settings.host, port=settings.port, print=None,
                shutdown_timeout=5)


@app.command()
def demo() -> None:
    """Start sandbox, NLU server and bot; seed demo customers; print the URLs and link codes."""
    from bot.demo import run

    raise typer.Exit(run())


@app.command()
def chat(
    url: str = typer.Option(None, help="The bot's base URL (default http://127.0.0.1:FINBOT_PORT)."),
    sender: str = typer.Option("terminal-user", help="Sender id for the REST channel."),
) -> None:
    """Chat with a running bot from the terminal (through the REST channel)."""
    from bot.channels.terminal import chat as run_chat
    from bot.settings import get_settings

    raise typer.Exit(run_chat(url or get_settings().resolved_public_url(), sender))


@sandbox_app.command("serve")
def sandbox_serve() -> None:
    """Run the sandbox platform on FINBOT_SANDBOX_PORT."""
    from sandbox.app import run
    from sandbox.settings import SandboxSettings

    run(SandboxSettings())


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the database migrations (idempotent)."""
    from bot.settings import get_settings
    from bot.store.migrate import upgrade

    upgrade(get_settings().resolved_database_url())
    typer.echo("database is up to date")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
