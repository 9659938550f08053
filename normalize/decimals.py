"""Exactness of venue decimals under float64.

A decimal with at most 15 significant digits survives str -> float64 -> repr unchanged (up to
trailing zeros), because float64 carries 15.95 decimal digits. Longer ones may not, and the
contract says such values are flagged (Flag.INEXACT), never silently rounded.

Checking each field's text after parsing would cost a float() per value; instead the raw frame
is scanned once for decimal tokens long enough to be suspect, which almost never match.
"""

from __future__ import annotations

import re

MAX_EXACT_DIGITS = 15

# A decimal token with a point and at least 16 digit-or-point characters: the only shape that
# can hold more than 15 significant digits in a venue's price/size text.
_SUSPECT = re.compile(rb"[0-9.]{16,}")


def significant_digits(text: str) -> int:
    """Number of significant decimal digits in a plain or exponent-form decimal string."""
    mantissa = text.strip().lstrip("+-").lower().split("e", 1)[0]
    if "." in mantissa:
        whole, fraction = mantissa.split(".", 1)
        digits = (whole + fraction).lstrip("0").rstrip("0")
    else:
        digits = mantissa.lstrip("0").rstrip("0")
    return len(digits)


def is_exact(text: str) -> bool:
    """True when float(text) round-trips to the same decimal value."""
    return len(text) <= MAX_EXACT_DIGITS or significant_digits(text) <= MAX_EXACT_DIGITS


def frame_has_inexact_decimal(frame: bytes) -> bool:
    """True when a decimal token in a raw frame has more than 15 significant digits.

    Integers (ids, timestamps) are not decimals and never trip this: a token must contain a point.
    """
    for match in _SUSPECT.finditer(frame):
        token = match.group()
        if b"." in token and significant_digits(token.decode()) > MAX_EXACT_DIGITS:
            return True
    return False
