"""Tardis.dev raw replay files (the HTTP API's `<time> <frame>` lines and tardis-machine's
`{"localTimestamp", "message"}` lines) are detected and read like any capture: the recorded
Binance session written in each shape reads back frame for frame and normalizes the same."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from ingest.capture_formats import CaptureFormatError, detect, read_capture
from ingest.offline import normalize_frames
from normalize.records import Trade
from tests.binance_data import CRYPTOFEED_WS, DATA

HUNDRED_NS = 100


def _iso(ts_ns: int) -> str:
    """Tardis's receive time: UTC, 7 fraction digits."""
    seconds, rest = divmod(ts_ns, 10**9)
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{rest // HUNDRED_NS:07d}Z"


def _session() -> list:  # type: ignore[type-arg]
    return [f for f in read_capture(CRYPTOFEED_WS) if f.kind == "ws"]


def _check(path: Path, kind: str, frames: list, middle: int) -> None:  # type: ignore[type-arg]
    assert detect(path) == kind
    read = list(read_capture(path))
    assert [f.payload for f in read] == [f.payload for f in frames]
    assert [f.ts_recv for f in read] == [f.ts_recv // HUNDRED_NS * HUNDRED_NS for f in frames]
    # the disconnect line starts a second connection
    assert {f.connection_id for f in read[:middle]} == {f"{path.name}#0"}
    assert {f.connection_id for f in read[middle:]} == {f"{path.name}#1"}
    trades = [r for r in normalize_frames("binance-usdm", read)[0].records if isinstance(r, Trade)]
    original = [r for r in normalize_frames("binance-usdm", frames)[0].records if isinstance(r, Trade)]
    assert [(t.trade_id, t.price, t.size, t.ts_event) for t in trades] == [
        (t.trade_id, t.price, t.size, t.ts_event) for t in original] and len(trades) == 91


def test_tardis_http_lines(tmp_path: Path) -> None:
    frames = _session()
    middle = len(frames) // 2
    lines = [f"{_iso(f.ts_recv)} {f.payload.decode()}" for f in frames]
    lines.insert(middle, _iso(frames[middle].ts_recv))  # a disconnect: the time alone
    path = tmp_path / "binance-futures_2021-07-22.raw.ndjson"
    path.write_text("\n".join(lines) + "\n")
    _check(path, "tardis", frames, middle)


def test_tardis_machine_lines(tmp_path: Path) -> None:
    frames = _session()
    middle = len(frames) // 3
    lines = [f'{{"localTimestamp":"{_iso(f.ts_recv)}","message":{f.payload.decode()}}}' for f in frames]
    lines.insert(middle, json.dumps({"localTimestamp": _iso(frames[middle].ts_recv)}))
    path = tmp_path / "replay.ndjson"
    path.write_text("\n".join(lines) + "\n")
    _check(path, "tardis-machine", frames, middle)


def test_generated_polls_become_rest_frames_and_bad_lines_are_refused(tmp_path: Path) -> None:
    poll = (DATA / "openInterest.tardis-generated.jsonl").read_text().strip()
    path = tmp_path / "oi.raw.ndjson"
    path.write_text(f"2020-08-01T00:00:00.1234567Z {poll}\n")
    (frame,) = read_capture(path)
    assert (frame.kind, frame.ts_recv) == ("rest", 1596240000123456700)
    assert frame.url == "https://fapi.binance.com/fapi/v1/openInterest?symbol=BTCUSDT"
    path.write_text(f"2020-08-01T00:00:00.1234567Z {poll}\nnot a tardis line\n")
    with pytest.raises(CaptureFormatError, match="not a tardis line"):
        list(read_capture(path))
