"""Encryption at rest: an AES-256-GCM key ring with key ids, encrypted column types, pseudonyms."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import hmac
import json
import logging
import os
import secrets
import stat
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

__all__ = [
    "DecryptionError",
    "EncryptedJSON",
    "EncryptedText",
    "KeyRing",
    "current_keyring",
    "decrypt_text",
    "encrypt_text",
    "install_keyring",
    "install_keyring_from",
    "pseudonym",
]

log = logging.getLogger(__name__)

# Blob layout: version (1 byte) | key id length (1 byte) | key id (ascii) | nonce (12) | ct+tag.
# The key id travels with every ciphertext so rows written before a rotation stay readable.
_VERSION = 1
_NONCE = 12
_KEY_BYTES = 32
# How often a running process checks the key file for a new primary (a stat, not a read).
_RELOAD_CHECK_S = 2.0


class DecryptionError(Exception):
    """A ciphertext could not be opened: tampered, truncated, wrong context or unknown key.

    The message never contains the ciphertext or the plaintext."""


class KeyRing:
    """AES-256-GCM keys by id, one of them primary (used to encrypt), plus a pseudonym key.

    The pseudonym key never rotates: pseudonyms in the audit trail stay comparable forever.
    When ``path`` is set, the ring re-reads its file when it meets an unknown key id and
    (at most every few seconds) when the file changed, so running processes pick up a key
    that ``finbot keys rotate`` added in another process."""

    def __init__(
        self,
        keys: dict[str, bytes],
        primary: str,
        pseudonym_key: bytes,
        path: Path | None = None,
    ) -> None:
        if primary not in keys:
            raise ValueError("primary key id is not in the ring")
        for kid, key in keys.items():
            if len(key) != _KEY_BYTES:
                raise ValueError(f"key {kid} is not 256 bits")
        self._keys = dict(keys)
        self._primary = primary
        self._pseudonym_key = pseudonym_key
        self._aead = {kid: AESGCM(key) for kid, key in keys.items()}
        self.path = path
        self._lock = threading.Lock()
        self._mtime = _mtime(path)
        self._checked_at = time.monotonic()

    # ---- construction and persistence ----

    @classmethod
    def generate(cls, path: Path | None = None) -> KeyRing:
        """A fresh ring with one key (not saved)."""
        kid = _new_key_id()
        return cls({kid: AESGCM.generate_key(bit_length=256)}, kid, secrets.token_bytes(32), path)

    @classmethod
    def load(cls, path: Path) -> KeyRing:
        """Read the key file; one readable by group or others is tightened to 0600 first."""
        path = Path(path)
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            os.chmod(path, 0o600)
            log.warning("key file was mode %04o; tightened to 0600", mode)
        keys, primary, pkey = _parse(path.read_text(encoding="utf-8"))
        return cls(keys, primary, pkey, path)

    @classmethod
    def load_or_create(cls, path: Path) -> KeyRing:
        """Load the key file, creating it (0600, folder 0700) with one key when missing."""
        path = Path(path)
        with _file_lock(path):
            if not path.exists():
                ring = cls.generate(path)
                ring._write(path)
        return cls.load(path)

    def save(self, path: Path | None = None) -> None:
        target = Path(path or self.path or "")
        if not str(target):
            raise ValueError("no path to save the key ring to")
        with _file_lock(target):
            self._write(target)
        self.path = target

    def _write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = {
            "version": 1,
            "primary": self._primary,
            "pseudonym_key": base64.b64encode(self._pseudonym_key).decode(),
            "keys": [
                {"id": kid, "key": base64.b64encode(key).decode()}
                for kid, key in self._keys.items()
            ],
            "updated_at": datetime.now(UTC).isoformat(),
        }
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        # Created 0600 from the start: the key never sits in a world-readable file.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=2)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        self._mtime = _mtime(path)

    def reload(self) -> bool:
        """Re-read the key file; True when it changed the ring. Keys are only ever added."""
        if self.path is None or not self.path.exists():
            return False
        keys, primary, pkey = _parse(self.path.read_text(encoding="utf-8"))
        with self._lock:
            if pkey != self._pseudonym_key:
                # Never silently switch pseudonym keys: audit ids would stop matching.
                raise ValueError("the key file's pseudonym key differs from the loaded one")
            changed = primary != self._primary or set(keys) != set(self._keys)
            merged = {**self._keys, **keys}
            self._keys = merged
            self._aead = {kid: AESGCM(key) for kid, key in merged.items()}
            self._primary = primary
            self._mtime = _mtime(self.path)
            self._checked_at = time.monotonic()
        return changed

    def _maybe_reload(self) -> None:
        if self.path is None:
            return
        now = time.monotonic()
        if now - self._checked_at < _RELOAD_CHECK_S:
            return
        self._checked_at = now
        if _mtime(self.path) != self._mtime:
            self.reload()

    # ---- keys ----

    @property
    def primary_id(self) -> str:
        return self._primary

    @property
    def key_ids(self) -> list[str]:
        return list(self._keys)

    def rotate(self) -> str:
        """Add a new primary key and save (when the ring has a file); returns its id.

        Re-reads the file under its lock first, so two rotations never lose a key."""
        if self.path is not None:
            with _file_lock(self.path):
                if self.path.exists():
                    self.reload()
                kid = self._add_primary()
                self._write(self.path)
            return kid
        return self._add_primary()

    def _add_primary(self) -> str:
        kid = _new_key_id()
        while kid in self._keys:
            kid = _new_key_id()
        key = AESGCM.generate_key(bit_length=256)
        with self._lock:
            self._keys[kid] = key
            self._aead[kid] = AESGCM(key)
            self._primary = kid
        return kid

    # ---- encryption ----

    def encrypt(self, plaintext: bytes, aad: bytes = b"") -> bytes:
        """Encrypt with the primary key: version | key id | nonce | ciphertext and tag."""
        self._maybe_reload()
        kid = self._primary
        nonce = os.urandom(_NONCE)
        ct = self._aead[kid].encrypt(nonce, plaintext, aad or None)
        kid_b = kid.encode("ascii")
        return bytes([_VERSION, len(kid_b)]) + kid_b + nonce + ct

    def decrypt(self, blob: bytes, aad: bytes = b"") -> bytes:
        kid, nonce, ct = _split(blob)
        aead = self._aead.get(kid)
        if aead is None:
            # Another process may have rotated: the file has the key we have not seen yet.
            self.reload()
            aead = self._aead.get(kid)
            if aead is None:
                raise DecryptionError("ciphertext uses an unknown key id")
        try:
            return aead.decrypt(nonce, ct, aad or None)
        except InvalidTag:
            raise DecryptionError(
                "ciphertext failed authentication (tampered or wrong context)"
            ) from None

    @staticmethod
    def key_id_of(blob: bytes) -> str:
        return _split(blob)[0]

    def pseudonym(self, value: str) -> str:
        """A stable keyed pseudonym (HMAC-SHA256, 96 bits, hex) for ids in the audit trail.

        Deterministic, so it can also serve as a blind index for looking rows up by value."""
        mac = hmac.new(self._pseudonym_key, value.encode("utf-8"), hashlib.sha256)
        return "p" + mac.hexdigest()[:24]


def _split(blob: bytes) -> tuple[str, bytes, bytes]:
    if len(blob) < 2 or blob[0] != _VERSION:
        raise DecryptionError("not a finbot ciphertext")
    n = blob[1]
    start = 2 + n
    if len(blob) < start + _NONCE + 16:
        raise DecryptionError("ciphertext truncated")
    try:
        kid = blob[2:start].decode("ascii")
    except UnicodeDecodeError:
        raise DecryptionError("not a finbot ciphertext") from None
    return kid, blob[start : start + _NONCE], blob[start + _NONCE :]


def _parse(text: str) -> tuple[dict[str, bytes], str, bytes]:
    data = json.loads(text)
    keys = {k["id"]: base64.b64decode(k["key"]) for k in data["keys"]}
    return keys, str(data["primary"]), base64.b64decode(data["pseudonym_key"])


def _new_key_id() -> str:
    # Date for operators, random suffix so two rotations on one day never collide.
    return datetime.now(UTC).strftime("k%Y%m%d") + secrets.token_hex(3)


def _mtime(path: Path | None) -> float | None:
    if path is None:
        return None
    try:
        return path.stat().st_mtime_ns / 1e9
    except FileNotFoundError:
        return None


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An advisory lock beside the key file: concurrent creators / rotators take turns."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock = path.with_name(f".{path.name}.lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


# ---- the process-wide ring ----

_ring: KeyRing | None = None
_ring_lock = threading.Lock()
# Rings installed earlier in this process: still used to *read* (never to write), so that
# two apps in one test process, each with its own key file, can read what the other wrote.
_earlier: list[KeyRing] = []


def install_keyring(ring: KeyRing | None) -> None:
    """Make ``ring`` the one the column types use (the app does this at start; tests too)."""
    global _ring
    with _ring_lock:
        if _ring is not None and ring is not _ring and _ring not in _earlier:
            _earlier.append(_ring)
            del _earlier[:-8]
        _ring = ring


def install_keyring_from(path: Path) -> KeyRing:
    """Load (or create) the key file at ``path`` and install it, unless it already is."""
    path = Path(path)
    current = _ring
    if current is not None and current.path is not None and current.path == path:
        return current
    ring = KeyRing.load_or_create(path)
    install_keyring(ring)
    return ring


def current_keyring() -> KeyRing:
    """The installed ring; without one, the ring at ``settings.keys_file`` (created if missing)."""
    global _ring
    if _ring is None:
        with _ring_lock:
            if _ring is None:
                from bot.settings import get_settings

                _ring = KeyRing.load_or_create(get_settings().keys_file)
    return _ring


def pseudonym(value: str) -> str:
    """Keyed pseudonym of ``value`` with the current ring (stable across key rotation)."""
    return current_keyring().pseudonym(value)


def encrypt_text(value: str, aad: str = "") -> str:
    """Encrypt a string to base64 text (what the column types store)."""
    blob = current_keyring().encrypt(value.encode("utf-8"), aad.encode("utf-8"))
    return base64.b64encode(blob).decode("ascii")


def decrypt_text(stored: str, aad: str = "") -> str:
    try:
        blob = base64.b64decode(stored, validate=True)
    except (ValueError, TypeError):
        raise DecryptionError("stored value is not base64") from None
    ring = current_keyring()
    try:
        return ring.decrypt(blob, aad.encode("utf-8")).decode("utf-8")
    except DecryptionError:
        kid = KeyRing.key_id_of(blob)
        for other in list(_earlier):
            if other is not ring and kid in other.key_ids:
                return other.decrypt(blob, aad.encode("utf-8")).decode("utf-8")
        raise


# ---- SQLAlchemy column types ----


class EncryptedText(TypeDecorator[str]):
    """A string column stored as base64 AES-GCM ciphertext (key id inside).

    ``context`` is bound as associated data, so a ciphertext copied into another column
    with a different context fails to decrypt. Rows cannot be filtered by value (every
    encryption differs): keep a ``pseudonym()`` column beside it for look-ups."""

    impl = Text
    cache_ok = True

    def __init__(self, context: str = "", *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.context = context

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise TypeError("EncryptedText takes str")
        return encrypt_text(value, self.context)

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return decrypt_text(value, self.context)

    def reencrypt(self, stored: str) -> str:
        """Open a stored value and seal it again with the primary key (key rotation)."""
        return encrypt_text(decrypt_text(stored, self.context), self.context)


class EncryptedJSON(TypeDecorator[Any]):
    """A JSON value (dict, list, str, number) stored as base64 AES-GCM ciphertext.

    Decimals are stored as strings; mutate-in-place is not tracked (assign a new value)."""

    impl = Text
    cache_ok = True

    def __init__(self, context: str = "", *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.context = context

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
        return encrypt_text(text, self.context)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        return json.loads(decrypt_text(value, self.context))

    def reencrypt(self, stored: str) -> str:
        return encrypt_text(decrypt_text(stored, self.context), self.context)
