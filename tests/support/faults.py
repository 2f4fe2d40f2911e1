"""A fault-injecting reverse proxy on loopback: pass, refuse, delay N s or answer 500."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal

import aiohttp
from aiohttp import web

__all__ = ["FaultProxy", "Mode", "fault_proxy"]

Mode = Literal["pass", "refuse", "delay", "error"]

# Hop-by-hop headers (RFC 9110 §7.6.1) and the ones aiohttp recomputes for the new message.
_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "host", "content-length", "content-encoding",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class FaultProxy:
    """Forwards every request to ``target`` unless a fault is switched on.

    Modes: ``pass`` (forward), ``refuse`` (the listening socket is closed, so connections are
    refused as when the service is down), ``delay`` (wait ``delay_s`` seconds, then forward —
    a slow service that still does the work), ``error`` (answer ``status`` with a JSON body
    without forwarding). ``only`` restricts the fault to paths matching a regular expression;
    other paths pass. ``seen`` counts requests that reached the proxy, by path.
    """

    target: str
    port: int = field(default_factory=_free_port)
    mode: Mode = "pass"
    delay_s: float = 0.0
    status: int = 500
    only: re.Pattern[str] | None = None
    seen: dict[str, int] = field(default_factory=dict)
    _runner: web.AppRunner | None = None
    _site: web.TCPSite | None = None
    _http: aiohttp.ClientSession | None = None
    _jobs: set[asyncio.Future[tuple[int, dict[str, str], bytes]]] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=60), auto_decompress=False
        )
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await self._listen()

    async def close(self) -> None:
        for job in list(self._jobs):
            job.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._site = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    # ---------------------------------------------------------------- switching faults

    async def set(
        self, mode: Mode, *, delay_s: float = 0.0, status: int = 500, only: str | None = None
    ) -> None:
        """Switch to ``mode`` (for requests to paths matching ``only`` when given)."""
        self.delay_s, self.status = delay_s, status
        self.only = re.compile(only) if only else None
        if mode == "refuse" and self.only is None:
            await self._unlisten()
        elif self._site is None:
            await self._listen()
        self.mode = mode

    async def passthrough(self) -> None:
        await self.set("pass")

    async def refuse(self, only: str | None = None) -> None:
        """Down: connections refused (with ``only``, matching requests are cut off instead)."""
        await self.set("refuse", only=only)

    async def delay(self, seconds: float, only: str | None = None) -> None:
        await self.set("delay", delay_s=seconds, only=only)

    async def error(self, status: int = 500, only: str | None = None) -> None:
        await self.set("error", status=status, only=only)

    def count(self, pattern: str) -> int:
        """Requests seen whose path matches ``pattern``."""
        rx = re.compile(pattern)
        return sum(n for path, n in self.seen.items() if rx.search(path))

    # ---------------------------------------------------------------- internals

    async def _listen(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await self._site.start()

    async def _unlisten(self) -> None:
        if self._site is not None:
            await self._site.stop()
            self._site = None

    def _faulty(self, path: str) -> bool:
        return self.mode != "pass" and (self.only is None or bool(self.only.search(path)))

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        path = request.rel_url.path
        self.seen[path] = self.seen.get(path, 0) + 1
        if self._faulty(path):
            if self.mode == "error":
                return web.json_response(
                    {"error": {"code": "injected_fault", "message": "fault proxy"}},
                    status=self.status,
                )
            if self.mode == "refuse":
                # Only reached with a path filter: drop the connection without an answer.
                assert request.transport is not None
                request.transport.close()
                raise asyncio.CancelledError
        body = await request.read()
        delay = self.delay_s if self._faulty(path) and self.mode == "delay" else 0.0
        # The upstream call runs on its own: a slow service finishes the work even when the
        # caller has given up (or died) meanwhile, as a real one would.
        job = asyncio.ensure_future(self._upstream(request, body, delay))
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)
        status, headers, payload = await asyncio.shield(job)
        return web.Response(body=payload, status=status, headers=headers)

    async def _upstream(
        self, request: web.Request, body: bytes, delay: float
    ) -> tuple[int, dict[str, str], bytes]:
        if delay:
            await asyncio.sleep(delay)
        assert self._http is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        try:
            async with self._http.request(
                request.method,
                self.target.rstrip("/") + str(request.rel_url),
                data=body or None,
                headers=headers,
                allow_redirects=False,
            ) as upstream:
                payload = await upstream.read()
                out = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP}
                return upstream.status, out, payload
        except (aiohttp.ClientError, TimeoutError):
            return 502, {"Content-Type": "application/json"}, b'{"error": {"code": "bad_gateway"}}'


@asynccontextmanager
async def fault_proxy(target: str) -> AsyncIterator[FaultProxy]:
    """A started FaultProxy in front of ``target``; closed afterwards."""
    proxy = FaultProxy(target)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()
