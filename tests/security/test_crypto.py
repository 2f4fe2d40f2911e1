"""Encryption at rest: key file, round trips, tampering, rotation across processes and rows."""

from __future__ import annotations

import asyncio
import base64
import os
import stat
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text, update

from bot.crypto import (
    DecryptionError,
    EncryptedJSON,
    EncryptedText,
    KeyRing,
    decrypt_text,
    encrypt_text,
    install_keyring,
    pseudonym,
)
from bot.store.db import Database
from bot.store.security import encrypted_columns, key_usage, reencrypt_all

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
SECRET_SENTENCE = "我其实不想让我老婆知道这笔钱"
ID_NUMBER = "11010519491231002X"


def test_key_file_is_created_0600_in_a_private_folder(keys_path: Path) -> None:
    assert not keys_path.parent.exists()
    ring = KeyRing.load_or_create(keys_path)
    assert stat.S_IMODE(os.stat(keys_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(keys_path.parent).st_mode) == 0o700
    # Loading again gives the same keys, not a new ring.
    again = KeyRing.load_or_create(keys_path)
    assert again.key_ids == ring.key_ids
    assert again.pseudonym("customer:C1") == ring.pseudonym("customer:C1")
    ring.rotate()
    assert stat.S_IMODE(os.stat(keys_path).st_mode) == 0o600  # still private after a rewrite
    os.chmod(keys_path, 0o644)  # an operator's careless copy
    assert KeyRing.load(keys_path).key_ids == ring.key_ids
    assert stat.S_IMODE(os.stat(keys_path).st_mode) == 0o600


def test_round_trip_and_tampering_is_detected(ring: KeyRing) -> None:
    blob = ring.encrypt(SECRET_SENTENCE.encode(), b"transcripts.text")
    assert SECRET_SENTENCE.encode() not in blob
    assert KeyRing.key_id_of(blob) == ring.primary_id
    assert ring.decrypt(blob, b"transcripts.text").decode() == SECRET_SENTENCE
    # Two encryptions of one value differ (random nonce): equal plaintexts are not visible.
    assert ring.encrypt(b"x", b"") != ring.encrypt(b"x", b"")
    for i in (len(blob) - 1, len(blob) - 20, len(blob) // 2):
        bad = bytearray(blob)
        bad[i] ^= 0x01
        with pytest.raises(DecryptionError):
            ring.decrypt(bytes(bad), b"transcripts.text")
    # A ciphertext moved to another column (other associated data) does not open.
    with pytest.raises(DecryptionError):
        ring.decrypt(blob, b"handoff_messages.text")
    with pytest.raises(DecryptionError):
        ring.decrypt(blob[:20], b"transcripts.text")
    # The error never carries the plaintext.
    try:
        decrypt_text(encrypt_text(SECRET_SENTENCE, "a"), "b")
    except DecryptionError as exc:
        assert SECRET_SENTENCE not in str(exc)


def test_pseudonym_is_keyed_and_stable_across_rotation(ring: KeyRing, tmp_path: Path) -> None:
    before = pseudonym("customer:C1001")
    assert before != pseudonym("customer:C1002")
    assert "C1001" not in before
    ring.rotate()
    assert pseudonym("customer:C1001") == before
    other = KeyRing.load_or_create(tmp_path / "other" / "keys.json")
    assert other.pseudonym("customer:C1001") != before  # keyed: another ring, other ids


def test_a_running_ring_reads_keys_added_by_another_process(ring: KeyRing, keys_path: Path) -> None:
    running = KeyRing.load(keys_path)  # e.g. the bot process
    rotator = KeyRing.load(keys_path)  # `finbot keys rotate` in another process
    new_id = rotator.rotate()
    sealed = rotator.encrypt(b"written after rotation", b"")
    assert new_id not in running.key_ids
    # Unknown key id → the running ring re-reads the key file and opens it.
    assert running.decrypt(sealed, b"") == b"written after rotation"
    assert running.primary_id == new_id
    # The running ring also encrypts with the new primary from now on.
    assert KeyRing.key_id_of(running.encrypt(b"y", b"")) == new_id


def test_a_running_ring_notices_a_new_primary_without_reading_old_rows(
    ring: KeyRing, keys_path: Path
) -> None:
    running = KeyRing.load(keys_path)
    new_id = KeyRing.load(keys_path).rotate()
    running._checked_at -= 10  # as if the periodic key-file check was due
    assert KeyRing.key_id_of(running.encrypt(b"z", b"")) == new_id


def _table(metadata: MetaData) -> Table:
    return Table(
        "sec_t_secrets",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("label", String(20)),
        Column("note", EncryptedText("sec_t_secrets.note")),
        Column("profile", EncryptedJSON("sec_t_secrets.profile"), nullable=True),
    )


async def _make(db: Database, table: Table) -> None:
    async with db.engine.begin() as conn:
        await conn.run_sync(lambda c: table.metadata.drop_all(c))
        await conn.run_sync(lambda c: table.metadata.create_all(c))


async def test_columns_store_ciphertext_and_read_plaintext(db_url: str, ring: KeyRing) -> None:
    metadata = MetaData()
    table = _table(metadata)
    db = Database(db_url)
    try:
        await _make(db, table)
        profile = {"id_number": ID_NUMBER, "amount": Decimal("50000.00"), "tags": ["vip"]}
        async with db.begin() as s:
            await s.execute(
                insert(table).values(id=1, label="a", note=SECRET_SENTENCE, profile=profile)
            )
            await s.execute(insert(table).values(id=2, label="b", note="", profile=None))
        async with db.begin() as s:
            rows = (await s.execute(select(table).order_by(table.c.id))).all()
            raw = (
                await s.execute(text("SELECT note, profile FROM sec_t_secrets WHERE id = 1"))
            ).one()
        assert rows[0].note == SECRET_SENTENCE
        assert rows[0].profile == {"id_number": ID_NUMBER, "amount": "50000.00", "tags": ["vip"]}
        assert rows[1].note == "" and rows[1].profile is None
        assert SECRET_SENTENCE not in raw.note and ID_NUMBER not in raw.profile
        assert KeyRing.key_id_of(base64.b64decode(raw.note)) == ring.primary_id

        # Someone edits the ciphertext in the database: reading fails loudly, not silently.
        blob = bytearray(base64.b64decode(raw.note))
        blob[-1] ^= 0x80
        async with db.begin() as s:
            await s.execute(
                text("UPDATE sec_t_secrets SET note = :v WHERE id = 1"),
                {"v": base64.b64encode(bytes(blob)).decode()},
            )
        with pytest.raises(DecryptionError):
            async with db.begin() as s:
                (await s.execute(select(table.c.note).where(table.c.id == 1))).one()
    finally:
        await db.close()


async def test_rotation_reencrypts_every_row_and_old_rows_stay_readable(
    db_url: str, ring: KeyRing, keys_path: Path
) -> None:
    metadata = MetaData()
    table = _table(metadata)
    assert [c.name for c in encrypted_columns(metadata)] == [
        "sec_t_secrets.note",
        "sec_t_secrets.profile",
    ]
    db = Database(db_url)
    try:
        await _make(db, table)
        # 120 rows written by "another process" (its own KeyRing instance) before rotation.
        writer = KeyRing.load(keys_path)
        install_keyring(writer)
        async with db.begin() as s:
            for i in range(120):
                await s.execute(
                    insert(table).values(
                        id=i, label=str(i), note=f"note {i} {SECRET_SENTENCE}", profile={"n": i}
                    )
                )
        old_id = writer.primary_id

        rotator = KeyRing.load(keys_path)
        install_keyring(rotator)
        new_id = rotator.rotate()
        # Before re-encryption, old rows are still readable with the rotated ring.
        async with db.begin() as s:
            assert (await s.execute(select(table.c.note).where(table.c.id == 7))).scalar_one() == (
                f"note 7 {SECRET_SENTENCE}"
            )
        assert await key_usage(db, metadata) == {old_id: 240}

        report = await reencrypt_all(db, rotator, metadata=metadata, batch_size=50)
        assert report.reencrypted == 240 and report.rows_scanned == 120
        assert report.unreadable == 0 and report.changed_meanwhile == 0
        assert await key_usage(db, metadata) == {new_id: 240}
        again = await reencrypt_all(db, rotator, metadata=metadata, batch_size=50)
        assert again.reencrypted == 0 and again.already_current == 240

        # The writer process, still holding its old ring object, reads rotated rows and
        # writes new ones with the new primary (it re-reads the key file).
        install_keyring(writer)
        async with db.begin() as s:
            notes = (await s.execute(select(table.c.note).order_by(table.c.id))).scalars().all()
            await s.execute(update(table).where(table.c.id == 3).values(note="changed"))
        assert notes == [f"note {i} {SECRET_SENTENCE}" for i in range(120)]
        assert writer.primary_id == new_id
        assert await key_usage(db, metadata) == {new_id: 240}
    finally:
        await db.close()


async def test_finbot_keys_rotate_covers_the_real_tables(
    sqlite_url: str, ring: KeyRing, keys_path: Path, tmp_path: Path
) -> None:
    from bot.store.conversations import ConversationRow, TranscriptRow

    db = Database(sqlite_url)
    try:
        async with db.begin() as s:
            conv = ConversationRow(channel="rest", sender="u1", lang="zh", state={"k": ID_NUMBER})
            s.add(conv)
            await s.flush()
            s.add(TranscriptRow(conversation_id=conv.id, role="customer", text=SECRET_SENTENCE))
        old_id = ring.primary_id
        env = {
            **os.environ,
            "FINBOT_DATABASE_URL": sqlite_url,
            "FINBOT_KEYS_FILE": str(keys_path),
        }
        out = subprocess.run(
            [sys.executable, "-m", "bot", "keys", "rotate", "--quiet"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        assert "2 values re-encrypted" in out.stdout
        assert "Traceback" not in out.stderr
        usage = await key_usage(db)
        assert old_id not in usage and sum(usage.values()) >= 2
        # This process never rotated, yet reads the rows (unknown key id → key file re-read).
        async with db.begin() as s:
            assert (await s.execute(select(TranscriptRow.text))).scalar_one() == SECRET_SENTENCE
            assert (await s.execute(select(ConversationRow.state))).scalar_one() == {"k": ID_NUMBER}
        status = subprocess.run(
            [sys.executable, "-m", "bot", "keys", "status"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert status.returncode == 0, status.stderr
        assert "mode 0600" in status.stdout and f"{old_id}  0 values" in status.stdout
    finally:
        await db.close()


async def test_rotation_never_overwrites_a_value_written_meanwhile(
    db_url: str, ring: KeyRing, keys_path: Path
) -> None:
    metadata = MetaData()
    table = _table(metadata)
    db = Database(db_url)
    try:
        await _make(db, table)
        async with db.begin() as s:
            await s.execute(
                insert(table), [{"id": i, "label": "x", "note": f"v0-{i}"} for i in range(300)]
            )
        ring.rotate()
        stop = False

        async def app_writer() -> int:
            # The running application keeps updating rows while the rotation walks the table.
            writes = 0
            while not stop:
                i = (writes * 37) % 300
                async with db.begin() as s:
                    await s.execute(update(table).where(table.c.id == i).values(note=f"v1-{i}"))
                writes += 1
                await asyncio.sleep(0)
            return writes

        task = asyncio.create_task(app_writer())
        await reencrypt_all(db, ring, metadata=metadata, batch_size=25)
        stop = True
        writes = await task
        assert writes > 0
        touched = {(k * 37) % 300 for k in range(writes)}
        async with db.begin() as s:
            notes = dict((await s.execute(select(table.c.id, table.c.note))).all())
        assert notes == {i: (f"v1-{i}" if i in touched else f"v0-{i}") for i in range(300)}
        # Every value ends up under the new primary (the writer's ring is the rotated one).
        assert await key_usage(db, metadata) == {ring.primary_id: 300}
    finally:
        await db.close()
