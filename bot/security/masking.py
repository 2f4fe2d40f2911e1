"""Data masking (数据脱敏): phone, ID and bank-card numbers, alone or inside free text."""

from __future__ import annotations

import re

__all__ = ["mask_card", "mask_id_number", "mask_phone", "mask_text"]

# Full-width digits (１３８…) and Ｘ are matched like ASCII ones; each maps to one character,
# so match offsets in the translated copy are offsets in the original text.
_FULLWIDTH = str.maketrans(
    {chr(0xFF10 + i): str(i) for i in range(10)} | {"Ｘ": "X", "ｘ": "x", "＋": "+", "－": "-"}
)

# A number is only matched whole: never starting right after a digit, never ending right
# before a digit, and never as part of an amount ("13812345678.50", "1,381…"). Letters may
# touch it ("tel13812345678", "ID11010519491231002X"), except a lone D or C: platform order
# ids are D + digits and complaint ids C + digits (D20261125000001), however long they grow.
# One-time codes are 6 digits, shorter than the shortest number masked here (11).
_START = r"(?<![0-9])(?<!(?<![A-Za-z])[DdCc])(?<![0-9][.,])"
_END = r"(?![0-9])(?![.,][0-9])"

_DATE = r"(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
_ID18 = rf"[1-9]\d{{5}}[ ]?{_DATE}[ ]?\d{{3}}[0-9Xx]"
_ID18_X = r"\d{17}[Xx]"  # any 17 digits + X is an ID, even with an odd birth date
_ID15 = r"[1-9]\d{5}\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}"
_CARD = r"\d{4}(?:[ -]\d{4}){3}(?:[ -]?\d{1,3})?|\d{16,}"
_PHONE = r"(?P<cc>(?:\+|00)?86[ -]?)?(?P<mobile>1[3-9]\d[ -]?\d{4}[ -]?\d{4})"

_PATTERN = re.compile(
    rf"{_START}(?:(?P<id>{_ID18}|{_ID18_X})|(?P<card>{_CARD})|(?P<id15>{_ID15})|{_PHONE}){_END}"
)
_DIGITS = re.compile(r"[^0-9Xx]")
# Cheap first pass: the shortest number masked is 11 digits (separators allowed inside).
_CANDIDATE = re.compile(r"[0-9\uff10-\uff19][0-9\uff10-\uff19 \-－]{9,}[0-9\uff10-\uff19XxＸｘ]")


def _digits(value: str) -> str:
    return _DIGITS.sub("", value.translate(_FULLWIDTH))


def mask_phone(phone: str) -> str:
    """'13812345678' / '+86 138-1234-5678' → '138****5678' (first 3, last 4)."""
    digits = _digits(phone)
    if len(digits) > 11 and digits.startswith(("0086", "86")):
        digits = digits[-11:]
    if len(digits) < 7:
        return "*" * len(digits)
    return f"{digits[:3]}****{digits[-4:]}"


def mask_id_number(id_number: str) -> str:
    """'11010519491231002X' → '**************002X' (last 4 kept, length of an 18-digit ID)."""
    digits = _digits(id_number).upper()
    return "*" * max(len(digits) - 4, 4) + digits[-4:]


def mask_card(card: str) -> str:
    """'6222 0212 3456 7890 123' → '**** **** **** 0123' (last 4 kept, whatever the length)."""
    digits = _digits(card)
    return f"**** **** **** {digits[-4:]}"


def _replace(match: re.Match[str], original: str) -> str:
    if match.group("id") or match.group("id15"):
        return mask_id_number(original)
    if match.group("card"):
        return mask_card(original)
    cc = match.group("cc") or ""
    # Keep the country code as typed: it tells a reader what kind of number was there.
    return cc + mask_phone(match.group("mobile"))


def mask_text(text: str) -> str:
    """Mask every phone, ID or card number inside ``text``; everything else is left alone."""
    if not text or _CANDIDATE.search(text) is None:
        return text
    probe = text.translate(_FULLWIDTH)
    out: list[str] = []
    last = 0
    for match in _PATTERN.finditer(probe):
        start, end = match.span()
        out.append(text[last:start])
        out.append(_replace(match, probe[start:end]))
        last = end
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)
