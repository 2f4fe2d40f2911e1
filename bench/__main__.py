"""`make bench`: turn latency/throughput vs bare Rasa parsing, memory, notification rate, NLU."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from bench.load import LevelResult, run_level
from bench.notifications import free_port, notification_rate
from bot.demo import Supervisor

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "var" / "reports"
LEVELS = (1, 8, 32)
SECONDS = float(os.environ.get("FINBOT_BENCH_SECONDS", "20"))
MEMORY_TURNS = int(os.environ.get("FINBOT_BENCH_MEMORY_TURNS", "10000"))
MEMORY_CONVERSATIONS = 1000

PARSE_TEXTS = ["赎回一般多久到账", "我想买五千块短债", "what's my balance", "how do i reset my password",
               "我那笔订单到哪了", "show my transactions from last month", "转人工", "你好"]
MEMORY_TEXTS = ["你好", "赎回多久到账", "有哪些产品", "what are the trading hours", "hi there",
                "手续费怎么收", "is my money safe", "投诉流程是什么", "show me your products", "谢谢"]


def say(message: str) -> None:
    print(f"[bench] {message}", flush=True)


async def _wait_ready(url: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(f"{url}/readyz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.5)
    raise RuntimeError("the bot did not become ready")


class Stack:
    """Sandbox, NLU server and bot as three processes on loopback, in a scratch folder."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.ports = {"bot": free_port(), "nlu": free_port(), "sandbox": free_port()}
        self.env = {
            **os.environ,
            "RASA_TELEMETRY_ENABLED": "false",
            "FINBOT_PORT": str(self.ports["bot"]),
            "FINBOT_NLU_PORT": str(self.ports["nlu"]),
            "FINBOT_SANDBOX_PORT": str(self.ports["sandbox"]),
            "FINBOT_NLU_URL": f"http://127.0.0.1:{self.ports['nlu']}",
            "FINBOT_BACKEND_URL": f"http://127.0.0.1:{self.ports['sandbox']}",
            "FINBOT_EVENTS_URL": f"http://127.0.0.1:{self.ports['bot']}/platform/events",
            "FINBOT_DATABASE_URL": f"sqlite+aiosqlite:///{scratch / 'bot.sqlite'}",
            "FINBOT_SANDBOX_DATABASE_URL": f"sqlite+aiosqlite:///{scratch / 'sandbox.sqlite'}",
            "FINBOT_KEYS_FILE": str(scratch / "keys.json"),
            "FINBOT_LOG_LEVEL": "WARNING",
        }
        self.supervisor = Supervisor()
        self.bot_url = f"http://127.0.0.1:{self.ports['bot']}"
        self.nlu_url = self.env["FINBOT_NLU_URL"]
        self.sandbox_url = self.env["FINBOT_BACKEND_URL"]

    async def start(self) -> None:
        finbot = [sys.executable, "-m", "bot"]
        self.supervisor.start("sandbox", [*finbot, "sandbox", "serve"], self.env, self.scratch / "sandbox.log")
        self.supervisor.start("nlu", [*finbot, "nlu", "serve"], self.env, self.scratch / "nlu.log")
        self.supervisor.start("bot", [*finbot, "serve"], self.env, self.scratch / "bot.log")
        await _wait_ready(self.bot_url)

    def bot_process(self) -> psutil.Process:
        name, proc = next(c for c in self.supervisor.children if c[0] == "bot")
        return psutil.Process(proc.pid)

    def stop(self) -> None:
        self.supervisor.stop()


async def bare_parse(stack: Stack) -> list[LevelResult]:
    results = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as http:
        async def one(w: int, i: int) -> int:
            text = PARSE_TEXTS[(w + i) % len(PARSE_TEXTS)]
            async with http.post(f"{stack.nlu_url}/model/parse", json={"text": text}) as resp:
                resp.raise_for_status()
                await resp.read()
            return 1

        for level in LEVELS:
            results.append(await run_level("bare /model/parse", level, SECONDS, one))
            say(f"bare parse c={level}: {results[-1].per_s}/s p50 {results[-1].p50_ms} ms")
    return results


class Customer:
    """One REST sender linked to a fresh sandbox customer."""

    def __init__(self, stack: Stack, http: aiohttp.ClientSession, sender: str) -> None:
        self.stack, self.http, self.sender = stack, http, sender
        self.phone = ""

    async def turn(self, message: str) -> list[dict[str, Any]]:
        async with self.http.post(f"{self.stack.bot_url}/webhooks/rest/webhook",
                                  json={"sender": self.sender, "message": message}) as resp:
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}")
            return list(await resp.json())

    async def link(self, index: int) -> None:
        self.phone = f"139{index:08d}"
        async with self.http.post(f"{self.stack.sandbox_url}/sandbox/customers", json={
            "name": f"压测{index}", "phone": self.phone, "risk_tolerance": "C3",
            "cash": "100000000.00", "holdings": [{"product": "MMF01", "shares": "10000"}],
        }) as resp:
            created = await resp.json()
        await self.turn(f"绑定 {created['link_code']}")

    async def latest_code(self) -> str:
        async with self.http.get(f"{self.stack.sandbox_url}/sandbox/sms", params={"phone": self.phone}) as resp:
            texts = [m["text"] for m in await resp.json()]
        found = re.findall(r"(?<!\d)(\d{6})(?!\d)", texts[-1] if texts else "")
        if not found:
            raise RuntimeError("no code")
        return found[0]

    async def buy(self) -> int:
        """Ask → confirm → code: three bot turns."""
        replies = await self.turn("买1000元短债")
        confirm = next((b["payload"] for r in replies for b in r.get("buttons", [])
                        if "confirm" in b["payload"]), None)
        if confirm is None:
            raise RuntimeError("no confirm button")
        await self.turn(confirm)
        await self.turn(await self.latest_code())
        return 3


async def turns(stack: Stack) -> list[LevelResult]:
    results = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as http:
        for level in LEVELS:
            customers = [Customer(stack, http, f"bench-{level}-{w}") for w in range(level)]
            await asyncio.gather(*(c.link(level * 100 + w) for w, c in enumerate(customers)))

            async def one(w: int, i: int, customers: list[Customer] = customers) -> int:
                c = customers[w]
                step = i % 3
                if step == 0:
                    await c.turn("赎回一般多久到账" if i % 2 else "what are the fees")
                    return 1
                if step == 1:
                    await c.turn("我的余额" if i % 2 else "check my balance")
                    return 1
                return await c.buy()

            results.append(await run_level("finbot REST turn", level, SECONDS, one))
            say(f"turns c={level}: {results[-1].per_s}/s p50 {results[-1].p50_ms} ms "
                f"errors {results[-1].errors}")
    return results


async def memory(stack: Stack) -> dict[str, Any]:
    proc = stack.bot_process()
    warmup = MEMORY_TURNS // 5
    done = 0
    samples: list[tuple[int, float]] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=16)) as http:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for n in range(MEMORY_TURNS):
            queue.put_nowait(n)

        async def worker() -> None:
            nonlocal done
            while not queue.empty():
                n = queue.get_nowait()
                sender = f"mem-{n % MEMORY_CONVERSATIONS}"
                text = MEMORY_TEXTS[n % len(MEMORY_TEXTS)]
                async with http.post(f"{stack.bot_url}/webhooks/rest/webhook",
                                     json={"sender": sender, "message": text}) as resp:
                    await resp.read()
                done += 1
                if done % 1000 == 0:
                    samples.append((done, proc.memory_info().rss / 2**20))

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(8)))
        took = time.monotonic() - started
    after_warmup = next(rss for n, rss in samples if n >= warmup)
    final = samples[-1][1]
    return {"turns": MEMORY_TURNS, "conversations": MEMORY_CONVERSATIONS, "seconds": round(took, 1),
            "rss_after_warmup_mb": round(after_warmup, 1), "rss_final_mb": round(final, 1),
            "growth_mb": round(final - after_warmup, 1), "samples": samples}


def nlu_summary(stack: Stack) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "bot", "nlu", "eval"], env=stack.env, cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    summary = REPORTS / "nlu_summary.txt"
    return {"exit_code": out.returncode,
            "summary": summary.read_text(encoding="utf-8").strip() if summary.exists() else out.stdout[-500:]}


def write_report(report: dict[str, Any]) -> None:
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / "bench.json").write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    lines = [
        "# finbot benchmark", "",
        f"Machine: {report['machine']['cpus']} CPUs, {report['machine']['memory_gb']} GiB, "
        f"Python {report['machine']['python']}; {SECONDS:g} s per level; loopback only.", "",
        "| load | concurrency | per s | p50 ms | p95 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in report["parse"] + report["turns"]:
        lines.append(f"| {row['name']} | {row['concurrency']} | {row['per_s']} | {row['p50_ms']} | "
                     f"{row['p95_ms']} | {row['p99_ms']} | {row['errors']} |")
    h = report["headline"]
    lines += ["", f"**Headline:** finbot turns {h['turns_per_s']}/s ÷ bare parse {h['parse_per_s']}/s "
              f"= **{h['ratio']}** (goal ≥ 0.8).", ""]
    m = report["memory"]
    lines.append(f"Memory: {m['turns']} turns over {m['conversations']} conversations in {m['seconds']} s; "
                 f"bot RSS {m['rss_after_warmup_mb']} MB after warm-up → {m['rss_final_mb']} MB "
                 f"({m['growth_mb']:+} MB).")
    for n in report["notifications"]:
        lines.append(f"Notifications ({n['database']}, {n['workers']} worker(s)): {n['sent']} in "
                     f"{n['seconds']} s = {n['per_s']}/s of {n['allowed_per_s']}/s allowed → "
                     f"**{n['ratio']}**, {n['rate_limited']} × 429.")
    lines.append(f"NLU: {report['nlu']['summary']}")
    (REPORTS / "bench.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
        for series, label in ((report["parse"], "bare parse"), (report["turns"], "finbot turn")):
            a.plot([r["concurrency"] for r in series], [r["per_s"] for r in series], marker="o", label=label)
            b.plot([r["concurrency"] for r in series], [r["p95_ms"] for r in series], marker="o", label=label)
        a.set(xscale="log", xlabel="concurrency", ylabel="per second", title="throughput")
        b.set(xscale="log", xlabel="concurrency", ylabel="p95 ms", title="latency")
        a.legend()
        b.legend()
        fig.tight_layout()
        fig.savefig(REPORTS / "bench.png", dpi=100)
    except Exception as exc:  # noqa: BLE001 — the plot is a convenience; the numbers are written
        say(f"plot not written: {type(exc).__name__}")


async def main() -> int:
    started = time.monotonic()
    report: dict[str, Any] = {"machine": {
        "cpus": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(), "platform": platform.platform(terse=True)}}
    with tempfile.TemporaryDirectory(prefix="finbot-bench-") as scratch:
        stack = Stack(Path(scratch))
        say("starting sandbox, NLU server and bot ...")
        try:
            await stack.start()
            report["parse"] = [r.as_dict() for r in await bare_parse(stack)]
            report["turns"] = [r.as_dict() for r in await turns(stack)]
            say(f"memory: {MEMORY_TURNS} turns over {MEMORY_CONVERSATIONS} conversations ...")
            report["memory"] = await memory(stack)
            report["nlu"] = nlu_summary(stack)
        finally:
            stack.stop()
    say("notifications through the fake Bot API ...")
    report["notifications"] = [await notification_rate("sqlite", 1), await notification_rate("postgresql", 2)]
    best_parse = max(r["per_s"] for r in report["parse"])
    best_turns = max(r["per_s"] for r in report["turns"])
    report["headline"] = {"turns_per_s": best_turns, "parse_per_s": best_parse,
                          "ratio": round(best_turns / best_parse, 2) if best_parse else 0.0}
    report["seconds"] = round(time.monotonic() - started, 1)
    write_report(report)
    say(f"done in {report['seconds']} s; var/reports/bench.md")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
