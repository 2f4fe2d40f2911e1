"""`finbot nlu ...`: train, serve, evaluate, parse and bench the Rasa NLU model."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Annotated

import typer

from bot import nlu_tools
from bot.settings import ROOT

app = typer.Typer(help="Train, serve and evaluate the NLU model.", no_args_is_help=True)


def _port() -> int:
    from bot.settings import get_settings

    return get_settings().nlu_port


def _url() -> str:
    from bot.settings import get_settings

    return get_settings().resolved_nlu_url()


def _fail(message: str) -> None:
    typer.echo(f"nlu: {message}", err=True)
    raise typer.Exit(2)


@app.command()
def train(
    force: Annotated[bool, typer.Option(help="Train even if a cached model matches.")] = False,
) -> None:
    """Split off the held-out set, train (or reuse the cached model) and point current at it."""
    try:
        path = nlu_tools.train(force=force)
    except (RuntimeError, ValueError) as exc:
        _fail(str(exc))
    typer.echo(str(path))


@app.command()
def serve(
    port: Annotated[int | None, typer.Option(help="Port (default FINBOT_NLU_PORT).")] = None,
) -> None:
    """Run the NLU server in the foreground: rasa run --enable-api (NLU-only model)."""
    try:
        model = nlu_tools.ensure_model()
    except (RuntimeError, ValueError) as exc:
        _fail(str(exc))
    cmd = [
        str(nlu_tools.rasa_bin()), "run", "--enable-api", "-m", str(model),
        "--port", str(port or _port()), "-i", "127.0.0.1",
    ]  # fmt: skip
    typer.echo(f"nlu: serving {model.name} on port {port or _port()}", err=True)
    os.chdir(ROOT)
    os.execve(cmd[0], cmd, nlu_tools.rasa_env())


@app.command("eval")
def evaluate(
    url: Annotated[str | None, typer.Option(help="NLU server (default FINBOT_NLU_URL).")] = None,
) -> None:
    """Evaluate the held-out split; writes var/reports/nlu_*; exits 1 below the gate."""
    try:
        with nlu_tools.ServerLease(url or _url()) as live:
            report = nlu_tools.evaluate(live)
    except (RuntimeError, ValueError, OSError) as exc:
        _fail(str(exc))
    typer.echo(nlu_tools.summary_line(report))
    best = max(
        report["threshold_sweep"], key=lambda r: (r["intent_accuracy"], r["out_of_scope_recall"])
    )
    typer.echo(f"fallback threshold sweep: best accuracy at {best['threshold']} "
               f"({best['intent_accuracy']:.3f}, OOS recall {best['out_of_scope_recall']:.3f})")  # fmt: skip
    for row in report["ambiguity_sweep"]:
        typer.echo(f"  ambiguity_threshold {row['ambiguity_threshold']:.2f} (threshold "
                   f"{row['threshold']}): accuracy {row['intent_accuracy']:.3f}, OOS recall "
                   f"{row['out_of_scope_recall']:.3f}, in-scope rejected {row['in_scope_rejected']:.3f}")  # fmt: skip
    for failure in report["failures"]:
        typer.echo(f"  below gate: {failure}", err=True)
    if not report["passed"]:
        raise typer.Exit(1)


@app.command()
def parse(
    url: Annotated[str | None, typer.Option(help="NLU server (default FINBOT_NLU_URL).")] = None,
) -> None:
    """Read utterances from stdin, print one JSON line each (logs go to stderr)."""
    try:
        with nlu_tools.ServerLease(url or _url()) as live:
            for line in sys.stdin:
                text = line.rstrip("\r\n")
                if not text.strip():
                    continue
                try:
                    out = nlu_tools.parse_line(live, text)
                except (OSError, ValueError) as exc:
                    typer.echo(f"nlu: parse failed: {exc}", err=True)
                    out = {
                        "text": text,
                        "intent": "nlu_unavailable",
                        "confidence": 0.0,
                        "entities": [],
                    }
                sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
                sys.stdout.flush()
    except (RuntimeError, ValueError, OSError) as exc:
        _fail(str(exc))


@app.command()
def bench(
    url: Annotated[str | None, typer.Option(help="NLU server (default FINBOT_NLU_URL).")] = None,
    requests: Annotated[int, typer.Option(min=1, max=5000)] = 300,
    concurrency: Annotated[int, typer.Option(min=1, max=32)] = 4,
) -> None:
    """Latency p50/p99 and throughput of /model/parse (writes var/reports/nlu_bench.json)."""
    try:
        with nlu_tools.ServerLease(url or _url()) as live:
            result = asyncio.run(nlu_tools.bench(live, requests, concurrency))
    except (RuntimeError, ValueError, OSError) as exc:
        _fail(str(exc))
    typer.echo(json.dumps(result))


if __name__ == "__main__":
    app()
