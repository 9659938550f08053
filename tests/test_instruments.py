"""Metadata refreshes publish an instrument when its terms change, or first on each UTC day."""

from __future__ import annotations

import msgspec

from ingest.capture_formats import read_capture
from normalize.instruments import DAY_NS, InstrumentLog
from normalize.venues.binance_usdm.instruments import exchange_info_instruments
from tests.binance_data import CRYPTOFEED_EXCHANGE_INFO

DAY_ONE = 1_626_992_741 * 10**9  # the recorded session's day


def _instruments(ts_recv: int):  # type: ignore[no-untyped-def]
    body = next(iter(read_capture(CRYPTOFEED_EXCHANGE_INFO))).payload
    return exchange_info_instruments(body, ts_recv, {})[0]


def test_unchanged_terms_are_published_once_a_day() -> None:
    log = InstrumentLog()
    first = log.news(_instruments(DAY_ONE))
    assert len(first) == len(_instruments(DAY_ONE)) > 100
    assert log.news(_instruments(DAY_ONE + 3600 * 10**9)) == []  # an hour later, the same terms
    next_day = log.news(_instruments(DAY_ONE - DAY_ONE % DAY_NS + DAY_NS))
    assert [i.symbol for i in next_day] == [i.symbol for i in first]
    assert log.latest["BTCUSDT"] is next(i for i in next_day if i.symbol == "BTCUSDT")


def test_a_changed_term_is_published_and_nan_equals_itself() -> None:
    log = InstrumentLog()
    instruments = _instruments(DAY_ONE)
    btc = next(i for i in instruments if i.symbol == "BTCUSDT")
    untraded = msgspec.structs.replace(btc, symbol="NOFILTERS", tick_size=float("nan"), lot_size=float("nan"))
    log.news([*instruments, untraded])
    later = DAY_ONE + 60 * 10**9
    finer = msgspec.structs.replace(btc, tick_size=0.001, ts_recv=later)
    same = [msgspec.structs.replace(i, ts_recv=later) for i in (*instruments, untraded) if i.symbol != "BTCUSDT"]
    assert log.news([finer, *same]) == [finer]
    assert log.latest["BTCUSDT"].tick_size == 0.001
