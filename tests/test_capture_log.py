"""The raw capture log: hourly files, exact bytes back, appends, and a crash-truncated tail."""

from __future__ import annotations

from pathlib import Path

from ingest.capture_formats import detect, read_capture, read_frames
from ingest.capture_log import CaptureWriter, list_captures, read_capture_log
from ingest.frames import Frame
from tests.binance_data import CRYPTOFEED_WS

HOUR = 3_600_000_000_000


def _real_frames() -> list[Frame]:
    return list(read_capture(CRYPTOFEED_WS))


def test_round_trip_and_hourly_rotation(tmp_path: Path) -> None:
    frames = _real_frames()
    half = len(frames) // 2
    # move the second half into the next hour so the writer must rotate
    shifted = frames[:half] + [Frame(f.ts_recv + HOUR, f.kind, f.payload, f.url, f.connection_id)
                               for f in frames[half:]]
    writer = CaptureWriter(tmp_path, "binance-usdm", flush_every=100)
    for frame in shifted:
        writer.append(frame)
    writer.close()
    files = list_captures(tmp_path, "binance-usdm")
    assert [p.name for p in files] == ["binance-usdm-20210722T22.tlcap.zst", "binance-usdm-20210722T23.tlcap.zst"]
    assert all(detect(p) == "ticklake" for p in files)
    assert list(read_frames(files)) == shifted
    assert sum(p.stat().st_size for p in files) < sum(len(f.payload) for f in frames) / 4


def test_reopening_appends(tmp_path: Path) -> None:
    frames = _real_frames()[:50]
    for chunk in (frames[:20], frames[20:]):
        writer = CaptureWriter(tmp_path, "binance-usdm")
        for frame in chunk:
            writer.append(frame)
        writer.close()
    (path,) = list_captures(tmp_path, "binance-usdm")
    assert list(read_capture_log(path)) == frames


def test_crash_loses_at_most_the_unflushed_tail(tmp_path: Path) -> None:
    frames = _real_frames()[:500]
    writer = CaptureWriter(tmp_path, "binance-usdm", flush_every=100, flush_interval_s=3600)
    for frame in frames:
        writer.append(frame)
    # no close(): the process dies here; 500 frames were flushed in blocks of 100
    (path,) = list_captures(tmp_path, "binance-usdm")
    recovered = list(read_capture_log(path))
    assert recovered == frames[: len(recovered)]
    assert len(recovered) == 500
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) - 50])  # a torn final block
    torn = list(read_capture_log(path))
    assert torn == frames[: len(torn)] and 300 <= len(torn) < 500
