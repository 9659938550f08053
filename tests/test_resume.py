"""A restarted handler carries on from the trades on the bus (ingest/resume.py): the last envelope of every
trade subject of its venue is read back, and the normalizer finds what was lost across the restart as one
trade_gap per symbol, asked for again over REST. The whole path, with a handler killed by SIGKILL while the
synthetic venue trades on, is tests/test_soak.py's."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
import nats
import pytest

from ingest.capture_formats import read_frames
from ingest.offline import normalize_frame, normalize_frames
from ingest.publisher import BusConfig
from ingest.resume import published_trades
from ingest.venues.registry import NORMALIZERS
from normalize.emitted import Emitted
from normalize.flags import FROM_REST, GAP_BEFORE
from normalize.records import FeedStatus, Trade
from normalize.venues.binance_usdm.normalizer import BinanceUsdm
from tests import coinbase_data, deribit_data
from tests.binance_data import CRYPTOFEED_RUN
from tests.sink_data import binance_records, publish, relabel
from ticklake.stack.nats import EmbeddedNats


def _last_ids(trades: list[Trade]) -> dict[str, int]:
    last: dict[str, int] = {}
    for trade in trades:
        last[trade.symbol] = max(last.get(trade.symbol, 0), int(trade.trade_id))
    return last


def test_the_last_trades_on_the_bus_per_instrument(bus: EmbeddedNats, tmp_path: Path) -> None:
    venue, records = relabel(binance_records())
    trades = [r for r in records if isinstance(r, Trade)]

    async def read(max_age_s: float, of: str = venue) -> list[Trade]:
        client = await nats.connect(bus.url)
        try:
            return await published_trades(client.jetstream(), BusConfig(bus.url), of, max_age_s)
        finally:
            await client.close()

    assert asyncio.run(read(600)) == [], "nothing published yet"
    asyncio.run(publish(bus.url, records, tmp_path / "spool", max_records=10))
    resumed = asyncio.run(read(600))
    assert {t.venue for t in resumed} == {venue} and all(t in trades for t in resumed)
    assert _last_ids(resumed) == _last_ids(trades), "every instrument's last published trade is among them"
    assert len(resumed) < len(trades), "only the last envelope of each subject is read"
    assert asyncio.run(read(0)) == [], "too old to backfill from"
    assert asyncio.run(read(600, of="another-venue")) == []


def test_a_restart_finds_the_trades_it_missed_as_one_gap_per_symbol() -> None:
    """The recorded session in two handlers: the first stops after a third of the frames, the next
    starts a tenth later (what came in between is lost) and resumes from the first's last trades."""
    frames = [f for f in read_frames(CRYPTOFEED_RUN)]
    cut, restart = len(frames) // 3, len(frames) // 3 + len(frames) // 10

    def run(normalizer: BinanceUsdm, part: list) -> Emitted:  # type: ignore[type-arg]
        out = Emitted()
        for frame in part:
            if frame.kind == "ws":
                normalizer.on_ws(frame.payload, frame.ts_recv, out)
            else:
                normalizer.on_rest(frame.url, frame.payload, frame.ts_recv, out)
        return out

    everything = [r for r in run(BinanceUsdm(), frames).records if isinstance(r, Trade)]
    before = [r for r in run(BinanceUsdm(), frames[:cut]).records if isinstance(r, Trade)]
    rest = [f for f in frames[:cut] if f.kind == "rest"]  # instruments, as a handler fetches them at start
    after = BinanceUsdm()
    run(after, rest)
    after.resume_trades(before, ("aggTrade", "depth@100ms"))
    out = run(after, frames[restart:])
    resumed = [r for r in out.records if isinstance(r, Trade)]
    missed = {t.trade_id for t in everything} - {t.trade_id for t in before} - {t.trade_id for t in resumed}
    assert missed, "the frames in between held trades"
    gaps = [r for r in out.records if isinstance(r, FeedStatus) and r.event == "trade_gap"]
    requested = {str(i) for b in out.backfill_requests for i in range(b.first_id, b.last_id + 1)}
    assert requested == missed, "exactly the trades lost across the restart are asked for"
    assert len(gaps) == len(out.backfill_requests) == len({b.symbol for b in out.backfill_requests})
    assert {t.symbol for t in resumed if t.flags & GAP_BEFORE} == {b.symbol for b in out.backfill_requests}
    assert not {t.trade_id for t in resumed} & {t.trade_id for t in before}, "nothing published twice"

    raw = BinanceUsdm()
    raw.resume_trades(before, ("aggTrade", "trade"))  # raw trade ids on the same subjects: not told apart
    assert not raw.agg_trade_ids.last


@pytest.mark.parametrize(("venue", "captures"), [("deribit", [deribit_data.DATA / "trades.tardis-fixture.jsonl"]),
                                                 ("coinbase", coinbase_data.RUN)])
def test_deribit_and_coinbase_resume_from_their_ids(venue: str, captures: list[Path]) -> None:
    """Told that the last published trade of an instrument came three ids before its first recorded one, the
    normalizer asks for the two in between (Deribit counts trade_seq, Coinbase trade ids)."""
    first, _ = normalize_frames(venue, read_frames(captures))
    trade = next(r for r in first.records if isinstance(r, Trade) and not r.flags & FROM_REST)
    number = trade.exch_seq if venue == "deribit" else int(trade.trade_id)
    assert number is not None
    before = (msgspec.structs.replace(trade, exch_seq=number - 3) if venue == "deribit"
              else msgspec.structs.replace(trade, trade_id=str(number - 3)))
    normalizer = NORMALIZERS[venue]()
    normalizer.resume_trades([before], ())
    out = Emitted()
    for frame in read_frames(captures):
        normalize_frame(normalizer, frame, out)
    assert (trade.symbol, number - 2, number - 1) in {(b.symbol, b.first_id, b.last_id) for b in out.backfill_requests}
    assert any(isinstance(r, FeedStatus) and r.event == "trade_gap" and r.symbol == trade.symbol for r in out.records)
