"""The evaluation gate on the held-out split, against the real Rasa server."""

from __future__ import annotations

import json

import pytest

from bot import nlu_tools


@pytest.mark.nlu
@pytest.mark.slow
def test_heldout_evaluation_meets_the_gate(nlu_url: str) -> None:
    report = nlu_tools.evaluate(nlu_url, log=lambda _: None)
    print("\n" + nlu_tools.summary_line(report))
    for lang, m in report["per_language"].items():
        print(f"  {lang}: {json.dumps(m)}")
    print("  threshold sweep:", json.dumps(report["threshold_sweep"]))
    assert (nlu_tools.REPORTS / "nlu_intent_report.json").exists()
    assert (nlu_tools.REPORTS / "nlu_confusion.png").stat().st_size > 10_000
    assert nlu_tools.summary_line(report) in (nlu_tools.REPORTS / "nlu_summary.txt").read_text()
    assert {"zh", "en"} <= set(report["per_language"])
    assert report["amount_examples"] >= 20
    # the agreed gate (nlu_tools.GATE), overall and per language
    assert report["passed"], report["failures"]
    # The blind set (written without seeing the training data) is evaluated and reported too.
    blind = report["blind"]
    print("  blind set:", json.dumps({k: v for k, v in blind.items() if k not in ("errors",)}))
    assert blind["n"] >= 350 and {"zh", "en"} <= set(blind["per_language"])
    low = [f"{scope} {k} {m[k]:.3f} < {bound}" for scope, m in
           [("blind", blind), *blind["per_language"].items()]
           for k, bound in nlu_tools.BLIND_FLOOR.items() if m[k] < bound]  # fmt: skip
    assert not low, low
