"""`finbot chat`: talk to a running bot from the terminal through the REST channel."""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import Any, TextIO

import aiohttp
import typer

__all__ = ["app", "chat"]

POLL_S = 1.5
HELP = "Type a message and press Enter; type a button's number to press it; Ctrl-D or Ctrl-C quits."


class _BotGone(Exception):
    """The bot stopped answering (not running, or went away mid-chat)."""


class _Unauthorized(Exception):
    """The bot wants a REST token we do not have or got wrong."""


class _Terminal:
    def __init__(self, url: str, sender: str, token: str | None, out: TextIO) -> None:
        self.url = url.rstrip("/")
        self.sender = sender
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.out = out
        self.buttons: list[dict[str, str]] = []
        self.print_lock = asyncio.Lock()

    def say(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    async def show(self, messages: list[dict[str, Any]], pushed: bool = False) -> None:
        async with self.print_lock:
            for m in messages:
                prefix = "bot (later)> " if pushed else "bot> "
                lines = str(m.get("text", "")).splitlines() or [""]
                self.say(prefix + lines[0])
                for line in lines[1:]:
                    self.say(" " * len(prefix) + line)
                buttons = m.get("buttons") or []
                if buttons:
                    self.buttons = [b for b in buttons if isinstance(b, dict)]
                    for i, b in enumerate(self.buttons, 1):
                        self.say(f"  [{i}] {b.get('title', '')}")

    async def request(self, http: aiohttp.ClientSession, method: str, path: str, **kw: Any) -> Any:
        try:
            async with http.request(method, self.url + path, headers=self.headers, **kw) as resp:
                if resp.status == 401:
                    raise _Unauthorized
                if resp.status >= 400:
                    body = await resp.json(content_type=None)
                    return [{"text": f"(error {resp.status}: {body.get('detail', body.get('error', ''))})"}]
                return await resp.json(content_type=None)
        except (TimeoutError, aiohttp.ClientConnectionError) as e:
            raise _BotGone from e

    async def poll(self, http: aiohttp.ClientSession) -> None:
        """Messages pushed later (agent replies, notifications) appear while you type."""
        while True:
            await asyncio.sleep(POLL_S)
            try:
                pending = await self.request(http, "GET", "/webhooks/rest/messages", params={"sender": self.sender})
            except _BotGone:
                continue  # the main loop reports it when the customer next types
            if pending:
                await self.show(pending, pushed=True)

    async def run(self, lines: asyncio.Queue[str | None], interactive: bool) -> int:
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            try:
                await self.request(http, "GET", "/healthz")
            except _BotGone:
                self.say(f"finbot is not running at {self.url}. Start it with `finbot serve` (or `make demo`).")
                return 1
            self.say(f"Connected to finbot at {self.url} as {self.sender!r}. {HELP}")
            poller = asyncio.get_running_loop().create_task(self.poll(http))
            try:
                while True:
                    if interactive:
                        self.out.write("you> ")
                        self.out.flush()
                    line = await lines.get()
                    if line is None:
                        return 0
                    text = line.strip()
                    if not text:
                        continue
                    if text.isdigit() and 1 <= int(text) <= len(self.buttons):
                        chosen = self.buttons[int(text) - 1]
                        self.say(f"  → {chosen.get('title', '')}")
                        text = str(chosen.get("payload", ""))
                    replies = await self.request(
                        http, "POST", "/webhooks/rest/webhook", json={"sender": self.sender, "message": text}
                    )
                    await self.show(replies if isinstance(replies, list) else [])
            except _BotGone:
                self.say(f"Lost the connection to finbot at {self.url}. Is it still running?")
                return 1
            except _Unauthorized:
                self.say("The bot needs a REST token: set FINBOT_REST_TOKEN to the bot's token.")
                return 2
            finally:
                poller.cancel()


def _reader(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[str | None], stream: TextIO) -> None:
    # A daemon thread: a blocked read never keeps the process alive after Ctrl-C.
    try:
        for line in stream:
            loop.call_soon_threadsafe(queue.put_nowait, line)
    finally:
        loop.call_soon_threadsafe(queue.put_nowait, None)


async def _main(url: str, sender: str, token: str | None, stdin: TextIO, out: TextIO) -> int:
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    threading.Thread(target=_reader, args=(loop, queue, stdin), daemon=True).start()
    return await _Terminal(url, sender, token, out).run(queue, interactive=stdin.isatty())


def chat(url: str, sender: str, token: str | None = None) -> int:
    """Chat with the bot at ``url`` as ``sender``; returns the exit code (0 after Ctrl-D/Ctrl-C,
    1 when the bot is not running, 2 when it wants a token). The token defaults to
    FINBOT_REST_TOKEN."""
    if token is None:
        from bot.settings import Settings

        token = Settings().rest_token
    try:
        return asyncio.run(_main(url, sender, token, sys.stdin, sys.stdout))
    except KeyboardInterrupt:
        sys.stdout.write("\n")
        return 0


app = typer.Typer(add_completion=False, help="Chat with a running bot from the terminal.")


@app.command()
def main(
    url: str = typer.Option("http://127.0.0.1:8080", help="The bot's base URL."),
    sender: str = typer.Option("terminal-user", help="Sender id for the REST channel."),
    token: str = typer.Option(None, envvar="FINBOT_REST_TOKEN", help="The REST channel's token."),
) -> None:
    """Chat with a running bot (the same as `finbot chat`)."""
    raise typer.Exit(chat(url, sender, token))


if __name__ == "__main__":
    app()
