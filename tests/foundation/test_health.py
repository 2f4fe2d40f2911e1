"""Health, readiness and metrics endpoints of the bot."""

from __future__ import annotations

import aiohttp


async def test_healthz_up_and_readyz_names_what_is_down(bot_server) -> None:  # type: ignore[no-untyped-def]
    bot = await bot_server()  # NLU and platform URLs point at closed ports
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{bot.url}/healthz") as resp:
            assert resp.status == 200
            assert (await resp.json())["status"] == "ok"
        async with http.get(f"{bot.url}/readyz") as resp:
            assert resp.status == 503
            body = await resp.json()
            assert body["checks"] == {"database": True, "nlu": False, "backend": False}
        async with http.get(f"{bot.url}/metrics") as resp:
            assert resp.status == 200
            assert "finbot_turns_total" in await resp.text()
