"""ticklake's own raw capture: the append-only log everything can be rebuilt from.

Every frame received (and every REST body used) is appended with its receive time, kind,
connection id and URL, to `<root>/<venue>/<YYYY-MM-DD>/<venue>[-<writer>]-<YYYYMMDD>T<HH>.tlcap.zst`,
one file per UTC hour of ts_recv and writer (each feed of a process, each shard on a host, has
its own writer name: two writers never append to one file). Inside: a zstd stream of records, each a 4-byte big-endian
length and a msgpack array [ts_recv, kind, connection_id, url, payload bytes].

The writer flushes a zstd block every `flush_every` frames or `flush_interval_s` seconds, so a
crash loses at most that much; reopening an hour's file appends a new zstd frame (zstd reads
concatenated frames as one stream). The reader stops cleanly at a truncated tail and says so.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import msgspec
import zstandard

from ingest.frames import Frame

MAGIC = b"\x28\xb5\x2f\xfd"
SUFFIX = ".tlcap.zst"
_LENGTH = struct.Struct(">I")
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(tuple[int, str, str, str, bytes])
NS_PER_HOUR = 3_600_000_000_000


def hour_path(root: Path, venue: str, ts_recv: int, writer: str = "") -> Path:
    hour = dt.datetime.fromtimestamp(ts_recv // 1_000_000_000, dt.UTC)
    name = f"{venue}-{writer}" if writer else venue
    return root / venue / hour.strftime("%Y-%m-%d") / f"{name}-{hour.strftime('%Y%m%dT%H')}{SUFFIX}"


class CaptureWriter:
    """Appends frames of one venue to hourly zstd files. Not thread-safe: one writer per task."""

    def __init__(self, root: Path, venue: str, flush_every: int = 1000, flush_interval_s: float = 1.0,
                 level: int = 3, writer: str = "") -> None:
        self.root, self.venue, self.writer = root, venue, writer
        self.flush_every, self.flush_interval_s = flush_every, flush_interval_s
        self._compressor = zstandard.ZstdCompressor(level=level)
        self._file: BinaryIO | None = None
        self._stream: zstandard.ZstdCompressionWriter | None = None
        self._hour = -1
        self._unflushed = 0
        self._buffer = bytearray()
        """Records since the last flush, compressed together at the flush: one compressor call per
        flush instead of one per frame (the append was a tenth of a handler's CPU in benchmarks/soak.py)."""
        self._last_flush = time.monotonic()
        self._part = 0
        """Bumped by each abandon: the part files after a failed write."""
        self.frames_written = 0

    def append(self, frame: Frame) -> None:
        hour = frame.ts_recv // NS_PER_HOUR
        if hour != self._hour:
            self._open(frame.ts_recv, hour)
        record = _encoder.encode((frame.ts_recv, frame.kind, frame.connection_id, frame.url, frame.payload))
        self._buffer += _LENGTH.pack(len(record))
        self._buffer += record
        self.frames_written += 1
        self._unflushed += 1
        if self._unflushed >= self.flush_every or time.monotonic() - self._last_flush >= self.flush_interval_s:
            self.flush()

    def flush(self) -> None:
        if self._stream is not None and self._unflushed:
            self._stream.write(self._buffer)
            self._buffer.clear()
            self._stream.flush(zstandard.FLUSH_BLOCK)
            assert self._file is not None
            self._file.flush()
        self._unflushed = 0
        self._last_flush = time.monotonic()

    def _open(self, ts_recv: int, hour: int) -> None:
        self.close()
        writer = "-".join(part for part in (self.writer, f"part{self._part}" if self._part else "") if part)
        path = hour_path(self.root, self.venue, ts_recv, writer)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("ab")
        self._stream = self._compressor.stream_writer(self._file, closefd=False)
        self._hour = hour

    def abandon(self) -> None:
        """After a failed write (a full disk): drop the open file without flushing (what it buffered is lost
        with the failure) and go on in a new part file, so later frames never sit behind a torn zstd frame
        (the reader stops at one)."""
        with contextlib.suppress(OSError, zstandard.ZstdError):
            if self._file is not None:
                self._file.close()
        self._stream = self._file = None
        self._hour = -1
        self._unflushed = 0
        self._buffer.clear()
        self._part += 1

    def close(self) -> None:
        if self._stream is not None:
            self._stream.write(self._buffer)
            self._buffer.clear()
            self._stream.flush(zstandard.FLUSH_FRAME)
            self._stream.close()
        if self._file is not None:
            self._file.close()
        self._stream = self._file = None
        self._hour = -1
        self._unflushed = 0


def read_capture_log(path: Path) -> Iterator[Frame]:
    """Frames of one capture file; a truncated tail (crash mid-write) ends the iteration."""
    reader = zstandard.ZstdDecompressor().stream_reader(path.open("rb"), read_across_frames=True)
    buffer = b""
    with reader:
        while True:
            try:
                chunk = reader.read(1 << 20)
            except zstandard.ZstdError:
                chunk = b""
            if not chunk:
                break
            buffer += chunk
            offset = 0
            while len(buffer) - offset >= 4:
                (length,) = _LENGTH.unpack_from(buffer, offset)
                if len(buffer) - offset - 4 < length:
                    break
                ts_recv, kind, connection_id, url, payload = _decoder.decode(buffer[offset + 4: offset + 4 + length])
                yield Frame(ts_recv, kind, payload, url, connection_id)  # type: ignore[arg-type]
                offset += 4 + length
            buffer = buffer[offset:]


def list_captures(root: Path, venue: str) -> list[Path]:
    return sorted((root / venue).glob(f"*/*{SUFFIX}"))
