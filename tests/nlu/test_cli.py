"""`finbot nlu parse`: one JSON line per input line on stdout, logs on stderr only."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bot.settings import ROOT


def _parse(url: str, lines: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli.nlu", "parse", "--url", url],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


@pytest.mark.nlu
def test_parse_prints_one_json_object_per_line(nlu_url: str) -> None:
    lines = ["我想买一万五的短债", "", "what are your trading hours", "asdkjh qwe zzz", "全部赎回"]
    done = _parse(nlu_url, lines)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(rows) == 4  # the blank line is skipped
    for row in rows:
        assert set(row) == {"text", "intent", "confidence", "entities"}
        assert 0.0 <= row["confidence"] <= 1.0
        assert all(set(e) == {"entity", "value"} for e in row["entities"])
    buy, faq, noise, redeem_all = rows
    assert buy["text"] == "我想买一万五的短债" and buy["intent"] == "buy_product"
    assert {"entity": "amount", "value": "15000"} in buy["entities"]
    assert {"entity": "product", "value": "BOND01"} in buy["entities"]
    assert faq["intent"] == "faq/trading_hours"
    assert noise["intent"] in ("nlu_fallback", "out_of_scope")  # keyboard mashing is not an action
    assert redeem_all["intent"] == "redeem_product"
    assert {"entity": "all", "value": True} in redeem_all["entities"]  # JSON true, as specified


def test_parse_without_a_server_fails_cleanly_on_stderr(tmp_path: object) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli.nlu", "parse", "--url", "http://127.0.0.1:9"],
        input="你好\n",
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "FINBOT_RASA_BIN": "/nonexistent/rasa", "HOME": str(tmp_path),
             "FINBOT_CACHE": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode != 0
    assert done.stdout == ""  # nothing but JSON ever reaches stdout
    assert "nlu:" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.nlu
def test_bench_reports_latency_and_throughput(nlu_url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli.nlu", "bench", "--url", nlu_url, "--requests", "30",
         "--concurrency", "2"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["requests"] == 30
    assert 0 < result["p50_ms"] <= result["p99_ms"]
    assert result["throughput_per_s"] > 1
