"""Training data follows the team's conventions; the split and the model cache behave."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from bot import nlu_tools
from bot.normalize import PRODUCT_CODES, parse_amount

INTENTS = {
    "greet", "goodbye", "thank", "affirm", "deny", "cancel", "help", "inform", "check_balance",
    "list_products", "buy_product", "redeem_product", "track_transaction",
    "transaction_history", "file_complaint", "complaint_status", "human_handoff",
    "notification_settings", "link_account", "out_of_scope",
}  # fmt: skip
FAQ_TOPICS = {
    "register", "real_name", "password_rules", "reset_password", "bind_card", "risk_assessment",
    "trading_hours", "confirm_time", "arrival_time", "fees", "redemption_fee", "nav_calculation",
    "limits", "order_status_meaning", "failed_transaction", "history_export",
    "notifications_info", "complaint_process", "complaint_time", "regulator", "service_hours",
    "product_types", "returns_guarantee", "data_protection", "close_account", "security_tips",
    "change_phone", "cancel_order", "fund_safety",
}  # fmt: skip
ENTITIES = {"amount", "shares", "product", "order_id", "complaint_id", "period", "all",
            "product_type", "risk_level"}  # fmt: skip
HARD = {"track_transaction", "transaction_history", "file_complaint", "complaint_status",
        "out_of_scope", "inform", "affirm", "deny", "greet"}  # fmt: skip


@pytest.fixture(scope="module")
def examples() -> list[nlu_tools.Example]:
    return nlu_tools.load_examples()


def test_zh_data_covers_every_intent_and_topic_with_enough_examples(
    examples: list[nlu_tools.Example],
) -> None:
    counts = Counter(e.intent for e in examples if e.lang == "zh")
    short = {i: counts[i] for i in INTENTS if counts[i] < (80 if i in HARD else 60)}
    short |= {f"faq/{t}": counts[f"faq/{t}"] for t in FAQ_TOPICS if counts[f"faq/{t}"] < 16}
    assert not short, f"zh intents below the agreed minimum: {short}"


def test_only_agreed_intents_and_entities(examples: list[nlu_tools.Example]) -> None:
    allowed = INTENTS | {f"faq/{t}" for t in FAQ_TOPICS}
    unknown = {e.intent for e in examples} - allowed
    assert not unknown, f"unknown intents in nlu/data: {sorted(unknown)}"
    bad = [
        (e.source, e.raw)
        for e in examples
        for a in e.entities
        if a.entity not in ENTITIES
        or (a.entity == "product" and a.value not in PRODUCT_CODES)
        or (a.entity == "all" and a.value != "true")
        or (a.entity == "order_id" and not re.fullmatch(r"[Dd](?:\d{14}|\d{10})", a.text))
        or (a.entity == "complaint_id" and not re.fullmatch(r"[Cc](?:\d{14}|\d{10})", a.text))
    ]
    assert not bad, f"annotations outside the conventions: {bad[:10]}"


def test_every_annotated_amount_normalises(examples: list[nlu_tools.Example]) -> None:
    bad = [
        e.raw
        for e in examples
        for a in e.entities
        if a.entity == "amount" and parse_amount(a.value or a.text) is None
    ]
    assert not bad, f"amount annotations the normaliser cannot read: {bad[:10]}"


def test_no_utterance_written_twice_within_zh(examples: list[nlu_tools.Example]) -> None:
    keys = Counter(nlu_tools.split_key(e.raw) for e in examples if e.lang == "zh")
    dupes = [k for k, n in keys.items() if n > 1]
    assert len(dupes) <= 25, f"too many zh near-duplicates (held-out would leak): {dupes[:20]}"


def test_heldout_split_is_stable_disjoint_and_about_twelve_percent(
    examples: list[nlu_tools.Example],
) -> None:
    held = [e for e in examples if nlu_tools.is_heldout(e.raw)]
    share = len(held) / len(examples)
    assert 0.08 < share < 0.16, share
    # the same text (modulo markup, case and punctuation) always lands on the same side
    assert nlu_tools.is_heldout("我想买[一万五](amount)的短债") == nlu_tools.is_heldout(
        "我想买一万五的短债！"
    )
    assert nlu_tools.split_key("Hello, World!") == nlu_tools.split_key("hello world")


def test_split_files_hold_training_examples_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(nlu_tools, "TRAIN_DIR", tmp_path / "train")
    monkeypatch.setattr(nlu_tools, "HELDOUT_FILE", tmp_path / "heldout.yml")
    result = nlu_tools.write_split(log=lambda _: None)
    train_text = "\n".join(
        p.read_text(encoding="utf-8") for p in (tmp_path / "train").glob("*.yml")
    )
    heldout = nlu_tools.load_heldout()
    assert len(heldout) == result.heldout > 50
    assert {e.lang for e in heldout} >= {"zh"}
    for ex in heldout[:200]:
        assert f"- {ex.raw}\n" not in train_text
    assert "- regex: order_id" in train_text and "- synonym: BOND01" in train_text


def test_unchanged_data_reuses_the_cached_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FINBOT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(nlu_tools, "CURRENT_MODEL", tmp_path / "models" / "current.tar.gz")
    # training is impossible here: the only way to succeed is the cache
    monkeypatch.setenv("FINBOT_RASA_BIN", str(tmp_path / "no-rasa"))
    cached = nlu_tools.cached_model_path()
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"model")
    lines: list[str] = []
    assert nlu_tools.train(log=lines.append) == cached
    assert any("reusing" in line for line in lines)
    assert (tmp_path / "models" / "current.tar.gz").resolve() == cached.resolve()
    # any change to the inputs changes the key, so the stale model is not reused
    with pytest.raises(RuntimeError, match="Rasa is not installed"):
        monkeypatch.setattr(nlu_tools, "SPLIT_VERSION", "changed")
        nlu_tools.train(log=lines.append)


def test_model_hash_covers_config_data_dictionary_and_lock() -> None:
    digest = nlu_tools.model_hash()
    assert re.fullmatch(r"[0-9a-f]{16}", digest)
    assert digest == nlu_tools.model_hash()
    assert nlu_tools.cached_model_path(digest).name == f"nlu-{digest}.tar.gz"


def test_blind_set_uses_agreed_labels_and_its_unseen_part_is_disjoint_from_training(
    examples: list[nlu_tools.Example],
) -> None:
    blind = nlu_tools.load_blind()
    assert len(blind) >= 600 and {e.lang for e in blind} == {"zh", "en"}
    assert {e.intent for e in blind} <= INTENTS | {f"faq/{t}" for t in FAQ_TOPICS}
    # Common phrasings also occur in the training data; the evaluation leaves them out.
    unseen = nlu_tools.unseen(blind)
    trained = {nlu_tools.split_key(e.raw) for e in examples if not nlu_tools.is_heldout(e.raw)}
    assert 350 <= len(unseen) < len(blind)
    assert not [e.text for e in unseen if nlu_tools.split_key(e.raw) in trained]
    assert {e.lang for e in unseen} == {"zh", "en"}


def test_the_sweep_emulates_both_fallback_settings() -> None:
    ex = nlu_tools.Example("x", "check_balance", "en", "t", ())
    tie = nlu_tools.Prediction(ex, "nlu_fallback", "check_balance", 0.6, None, margin=0.03)
    clear = nlu_tools.Prediction(ex, "check_balance", "check_balance", 0.6, None, margin=0.4)
    low = nlu_tools.Prediction(ex, "nlu_fallback", "check_balance", 0.2, None, margin=0.4)
    acc = [nlu_tools._metrics([tie, clear, low], 0.35, a)["intent_accuracy"] for a in (0.0, 0.1)]
    assert acc == [2 / 3, 1 / 3]
    assert nlu_tools.fallback_settings()[0] == pytest.approx(0.35)
