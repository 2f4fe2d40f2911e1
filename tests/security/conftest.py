"""Fixtures of the security tests: a fresh key ring per test, installed process-wide."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.crypto import KeyRing, current_keyring, install_keyring


@pytest.fixture
def keys_path(tmp_path: Path) -> Path:
    return tmp_path / "secrets" / "keys.json"


@pytest.fixture
def ring(keys_path: Path) -> Iterator[KeyRing]:
    """A key ring on disk (0600 file under tmp_path), installed for the column types."""
    previous = current_keyring() if _installed() else None
    ring = KeyRing.load_or_create(keys_path)
    install_keyring(ring)
    yield ring
    install_keyring(previous)


def _installed() -> bool:
    from bot import crypto

    return crypto._ring is not None
