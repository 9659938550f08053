"""Venue decimals: <= 15 significant digits round-trip exactly; longer ones are detected; the compiled
parser gives float()'s value for every decimal and refuses what is no decimal."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from normalize.decimals import MAX_EXACT_DIGITS, frame_has_inexact_decimal, is_exact, parse_decimals, significant_digits
from tests.strategies import decimal_texts


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


@settings(max_examples=1000)
@given(st.lists(st.tuples(st.booleans(), decimal_texts), max_size=4))
def test_parse_decimals_equals_float_and_reports_inexact_text(signed: list[tuple[bool, str]]) -> None:
    texts = [("-" if negative else "") + text for negative, text in signed]
    *values, inexact = parse_decimals(*texts)
    assert values == [float(text) for text in texts]
    assert all(type(v) is float for v in values)
    assert inexact is any(significant_digits(text) > MAX_EXACT_DIGITS for text in texts)


@pytest.mark.parametrize("text", ["", " 1", "1 ", "+1", "1_000", "nan", "inf", "-Infinity", "0x10", "1e400", "12a",
                                  ".", "-", "1e", "1.2.3", '"1"', "\u0661"])
def test_parse_decimals_refuses_what_is_no_decimal(text: str) -> None:
    with pytest.raises(ValueError, match="not a decimal"):
        parse_decimals("1", text)


def test_parse_decimals_takes_text_only() -> None:
    with pytest.raises(TypeError, match="is a str, not float"):
        parse_decimals(1.5)  # type: ignore[arg-type]
