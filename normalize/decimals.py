"""Exactness of venue decimals under float64.

A decimal with at most 15 significant digits survives str -> float64 -> repr unchanged (up to
trailing zeros), because float64 carries 15.95 decimal digits. Longer ones may not, and the
contract says such values are flagged (Flag.INEXACT), never silently rounded.

Where a record's decimals are a few known fields (a trade's price and size), `parse_decimals`
turns their text into floats and says whether any is inexact in one compiled call (the books'
own parser, normalize/_l2book.c): a fifth of float()'s time. Elsewhere the raw frame is scanned
once for decimal tokens long enough to be suspect, which almost never match.
"""

from __future__ import annotations

import re

from normalize._l2book import parse_decimals

__all__ = ["MAX_EXACT_DIGITS", "frame_has_inexact_decimal", "is_exact", "parse_decimals", "significant_digits"]

MAX_EXACT_DIGITS = 15

# A decimal with more than 15 significant digits has at least 16 digits and a point: a run of
# 17 or more digit-or-point characters. Finding such a run is done in C by mapping those
# characters to "0" and searching for seventeen of them (about 0.7 us for a 20-level depth
# frame, a tenth of a regex scan); only frames that have one are looked at token by token.
_MIN_RUN = 17
_TO_ZERO = bytes.maketrans(b"0123456789.", b"0" * 11)
_RUN = b"0" * _MIN_RUN
_SUSPECT = re.compile(rb"[0-9.]{%d,}" % _MIN_RUN)


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
    if _RUN not in frame.translate(_TO_ZERO):
        return False
    for match in _SUSPECT.finditer(frame):
        token = match.group()
        if b"." in token and significant_digits(token.decode()) > MAX_EXACT_DIGITS:
            return True
    return False
