"""The audit chain: appends in the caller's transaction, tamper evidence, retention, concurrency."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select, text

from bot.crypto import KeyRing, pseudonym
from bot.security import audit
from bot.store.db import Database
from bot.store.security import AuditEvent

pytestmark = pytest.mark.timeout(90)

PHONE = "13812345678"


async def _append(db: Database, n: int, *, at: datetime | None = None, start: int = 0) -> None:
    for i in range(start, start + n):
        async with db.begin() as s:
            await audit.record(
                s,
                "order_placed",
                actor=f"customer:C{i % 3}",
                subject=f"conversation:{i % 3}",
                details={"order_id": f"D20261125{i:02d}", "amount": Decimal("1000.00"), "i": i},
                at=at,
            )


@pytest.fixture
async def db(db_url: str, ring: KeyRing) -> Database:
    database = Database(db_url)
    yield database  # type: ignore[misc]
    await database.close()


async def test_rows_hold_pseudonyms_and_no_personal_data(db: Database) -> None:
    async with db.begin() as s:
        await audit.record(
            s,
            "link",
            actor="customer:C1001",
            subject="conversation:7",
            details={
                "phone": PHONE,
                "note": f"linked from {PHONE}",
                "name": "张三",
                "channel": "rest",
            },
        )
    async with db.begin() as s:
        row = (await s.execute(select(AuditEvent))).scalar_one()
    assert row.seq == 1 and row.kind == "link"
    assert row.actor == pseudonym("customer:C1001") and "C1001" not in row.actor
    assert row.subject == pseudonym("conversation:7")
    assert PHONE not in row.details and "张三" not in row.details
    assert '"channel":"rest"' in row.details and "138****5678" in row.details
    entries = await audit.entries_for(db, "conversation:7")
    assert [e.kind for e in entries] == ["link"]
    assert await audit.verify(db) is None


async def test_record_rolls_back_with_the_callers_transaction(db: Database) -> None:
    await _append(db, 2)
    with pytest.raises(RuntimeError):
        async with db.begin() as s:
            await audit.record(s, "export", actor="customer:C1", subject=None, details={})
            raise RuntimeError("the caller's work failed")
    await _append(db, 1, start=2)
    async with db.begin() as s:
        seqs = (await s.execute(select(AuditEvent.seq).order_by(AuditEvent.seq))).scalars().all()
    assert seqs == [1, 2, 3]
    assert await audit.verify(db) is None


async def test_verify_names_an_edited_row(db: Database) -> None:
    await _append(db, 6)
    assert await audit.verify(db) is None
    async with db.begin() as s:
        await s.execute(text("UPDATE audit_log SET details = :d WHERE seq = 4"), {"d": '{"i":99}'})
    problem = await audit.check(db)
    assert problem is not None and (problem.seq, problem.reason) == (4, "edited")
    assert await audit.verify(db) == 4


async def test_verify_names_a_row_rewritten_with_a_fresh_hash(db: Database) -> None:
    await _append(db, 5)
    async with db.begin() as s:
        row = (await s.execute(select(AuditEvent).where(AuditEvent.seq == 2))).scalar_one()
        data = {c: getattr(row, c) for c in ("seq", "at", "kind", "actor", "subject", "prev_hash")}
        data["details"] = "{}"
        await s.execute(
            text("UPDATE audit_log SET details = '{}', hash = :h WHERE seq = 2"),
            {"h": audit._hash(data)},
        )
    # Row 2 is self-consistent now, but row 3 no longer links to it.
    problem = await audit.check(db)
    assert problem is not None and (problem.seq, problem.reason) == (3, "broken_link")


async def test_verify_names_a_deleted_row_and_a_deleted_tail(db: Database) -> None:
    await _append(db, 6)
    async with db.begin() as s:
        await s.execute(text("DELETE FROM audit_log WHERE seq = 6"))
    problem = await audit.check(db)
    assert problem is not None and (problem.seq, problem.reason) == (6, "missing")
    async with db.begin() as s:
        await s.execute(text("DELETE FROM audit_log WHERE seq = 3"))
    assert await audit.verify(db) == 3


async def test_purge_keeps_the_chain_verifiable(db: Database) -> None:
    old = datetime(2022, 1, 5, tzinfo=UTC)
    await _append(db, 5, at=old)
    await _append(db, 4, start=5)
    with pytest.raises(ValueError):
        await audit.purge(db, timedelta(days=30))  # below three years: refused
    now = datetime.now(UTC) + timedelta(days=2)  # old rows are ~5 years old then
    assert await audit.purge(db, timedelta(days=3 * 366), now=now) == 5
    assert await audit.verify(db) is None
    n, lo, hi = await audit.count(db)
    assert (n, lo, hi) == (5, 6, 10)  # 4 kept + the purge's own record
    async with db.begin() as s:
        last = (await s.execute(select(AuditEvent).where(AuditEvent.seq == 10))).scalar_one()
    assert last.kind == "audit_purged" and '"rows":5' in last.details
    # Nothing more to purge; appends continue the chain after the anchor.
    assert await audit.purge(db, timedelta(days=3 * 366), now=now) == 0
    await _append(db, 2, start=20)
    assert await audit.verify(db) is None
    # Cutting the oldest rows and moving the anchor by hand, without a purge record, is seen.
    async with db.begin() as s:
        row7 = (await s.execute(select(AuditEvent).where(AuditEvent.seq == 7))).scalar_one()
        await s.execute(text("DELETE FROM audit_log WHERE seq <= 7"))
        await s.execute(
            text("UPDATE audit_head SET anchor_seq = 7, anchor_hash = :h"), {"h": row7.hash}
        )
    problem = await audit.check(db)
    assert problem is not None and (problem.seq, problem.reason) == (8, "unrecorded_purge")


async def test_deleting_the_first_row_after_a_purge_is_detected(db: Database) -> None:
    await _append(db, 3, at=datetime(2022, 1, 5, tzinfo=UTC))
    await _append(db, 3, start=3)
    assert (
        await audit.purge(db, timedelta(days=3 * 366), now=datetime.now(UTC) + timedelta(days=2))
        == 3
    )
    assert await audit.verify(db) is None
    async with db.begin() as s:
        await s.execute(text("DELETE FROM audit_log WHERE seq = 4"))  # the first kept row
    problem = await audit.check(db)
    assert problem is not None and (problem.seq, problem.reason) == (4, "missing")


async def test_purge_refuses_to_hide_tampering(db: Database) -> None:
    await _append(db, 4, at=datetime(2021, 3, 1, tzinfo=UTC))
    async with db.begin() as s:
        await s.execute(text("UPDATE audit_log SET kind = 'nothing' WHERE seq = 2"))
    with pytest.raises(audit.AuditChainError):
        await audit.purge(db, timedelta(days=3 * 366))
    assert await audit.verify(db) == 2


async def test_concurrent_appends_keep_the_chain_valid(db: Database) -> None:
    async def writer(w: int) -> None:
        for i in range(8):
            async with db.begin() as s:
                await audit.record(
                    s,
                    "agent_reply",
                    actor=f"agent:a{w}",
                    subject=f"conversation:{i}",
                    details={"w": w},
                )
                await asyncio.sleep(0)  # let other writers interleave inside the transaction

    await asyncio.wait_for(asyncio.gather(*(writer(w) for w in range(6))), timeout=60)
    n, lo, hi = await audit.count(db)
    assert (n, lo, hi) == (48, 1, 48)
    assert await audit.verify(db) is None


def _cli(db_url: str, keys: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FINBOT_DATABASE_URL": db_url, "FINBOT_KEYS_FILE": str(keys)}
    return subprocess.run(
        [sys.executable, "-m", "bot", "audit", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_finbot_audit_verify_prints_ok_or_the_bad_row(
    db: Database, db_url: str, keys_path: Path, tmp_path: Path
) -> None:
    await _append(db, 3)
    ok = _cli(db_url, keys_path, tmp_path, "verify")
    assert ok.returncode == 0 and ok.stdout.startswith("OK") and "3 rows" in ok.stdout
    assert f"head hash {await audit.head_hash(db)}" in ok.stdout
    async with db.begin() as s:
        await s.execute(text("UPDATE audit_log SET actor = 'someone' WHERE seq = 2"))
    bad = _cli(db_url, keys_path, tmp_path, "verify")
    assert bad.returncode == 1
    assert "seq 2" in bad.stdout and "edited" in bad.stdout
    assert "Traceback" not in bad.stdout + bad.stderr
    found = _cli(db_url, keys_path, tmp_path, "find", "conversation:1")
    assert (
        found.returncode == 0 and "order_placed" in found.stdout and "D2026112501" in found.stdout
    )
    refused = _cli(db_url, keys_path, tmp_path, "purge", "--older-than-days", "10")
    assert refused.returncode == 2 and "three years" in refused.stderr
