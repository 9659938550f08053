"""Venue decimals: <= 15 significant digits round-trip exactly; longer ones are detected."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from normalize.decimals import frame_has_inexact_decimal, is_exact, significant_digits


@st.composite
def venue_decimals(draw: st.DrawFn, max_digits: int = 15) -> str:
    digits = draw(st.integers(1, max_digits))
    mantissa = draw(st.integers(10 ** (digits - 1), 10**digits - 1))
    point = draw(st.integers(0, digits + 8))
    text = str(mantissa).rjust(point + 1, "0")
    whole, fraction = text[: len(text) - point], text[len(text) - point:]
    trailing = "0" * draw(st.integers(0, 3))
    return f"{whole}.{fraction}{trailing}" if point else whole + (".0" if trailing else "")


@given(venue_decimals())
def test_short_decimals_round_trip_exactly(text: str) -> None:
    assert is_exact(text)
    assert Decimal(repr(float(text))) == Decimal(text)


def test_long_decimals_are_flagged() -> None:
    assert significant_digits("0.1234567890123456") == 16
    assert not is_exact("0.1234567890123456")
    assert is_exact("0.000000012345678901234500000")  # 15 digits, zeros do not count
    assert frame_has_inexact_decimal(b'{"p":"65432.12345678901234","q":"1"}')
    assert not frame_has_inexact_decimal(b'{"p":"65432.1","q":"0.00100000","T":1721687141062123456}')
    assert not frame_has_inexact_decimal(b'{"id":12345678901234567890}')
