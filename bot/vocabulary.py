"""The Latin-script words finbot's NLU was trained on: a message of only unknown words is noise.

DIET classifies any input with some confidence; for strings like "qwzx plmokn ujhy" the char
n-grams are meaningless and the prediction is arbitrary. A message whose every Latin word is
absent from the training data (and that has no Chinese, digits or ids) is treated as not
understood, so the customer gets "did you mean…" / the menu instead of a random action."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "nlu" / "data"
_WORD = re.compile(r"[a-z]+")
_ANNOTATION = re.compile(r"\[([^\]]*)\](?:\([^)]*\)|\{[^}]*\})")
_CJK = re.compile(r"[\u3400-\u9fff]")
_DIGIT = re.compile(r"\d")


@lru_cache(maxsize=1)
def vocabulary() -> frozenset[str]:
    """Every lower-case Latin word in nlu/data (empty when the data is not shipped)."""
    words: set[str] = set()
    for path in DATA.glob("**/*.yml"):
        text = _ANNOTATION.sub(r"\1", path.read_text(encoding="utf-8").lower())
        words.update(_WORD.findall(text))
    return frozenset(words)


def is_noise(text: str) -> bool:
    """True for Latin-only text none of whose words (longer than two letters) we know."""
    if _CJK.search(text) or _DIGIT.search(text):
        return False
    words = [w for w in _WORD.findall(text.lower()) if len(w) > 2]
    vocab = vocabulary()
    if not words or not vocab:
        return False
    return not any(w in vocab for w in words)
