"""Readers for recorded captures, detected from the file's first bytes.

* ticklake's own capture log (zstd; see ingest.capture_log).
* cryptofeed `AsyncFileCallback` dumps: `<ts>: <frame>` received frames, `<url> -> <ts>: <body>`
  REST responses, `<url> <-> <ts>` connects (a new connection id), `<url> <- <ts>: ...` sent
  frames and `configuration:` lines (skipped). `<ts>` is float seconds.
* hftbacktest collector files (gzip): `<ns> <frame>`. A bare Binance REST depth body sits in
  the stream where it was fetched; it carries no symbol, so it is attributed to the symbol of
  the frames around it and given the /fapi/v1/depth URL.
* JSONL, one frame per line, with no receive time (tardis-node fixtures): ts_recv is 0, and
  tardis's generated REST polls (`"generated": true`) become REST frames of their endpoint.
* Tardis.dev raw replay: the HTTP API's data feeds, `<ISO 8601 receive time> <frame>` a line (a
  line with no frame marks a disconnect), and tardis-machine's or tardis-node's replay,
  `{"localTimestamp": ..., "message": {...}}` a line (no message: a disconnect). Times carry up
  to 100 ns (7 digits); generated REST polls become REST frames as in JSONL.
* VCR cassettes (YAML, as vcrpy records HTTP in SDK test suites): each successful interaction
  is a REST frame received at its response's `Date` header; a request body (a POST) becomes the
  URL fragment, as in ticklake's own POST URLs (ingest.venues.interface).

Each reader yields Frames in file order; `read_frames` merges several files by ts_recv.
"""

from __future__ import annotations

import calendar
import email.utils
import gzip
import heapq
import re
import time
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path

import msgspec

from ingest import capture_log
from ingest.frames import Frame

_HFT_LINE = re.compile(rb"^\d{19} ")
_TARDIS_LINE = re.compile(rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z(?: |$)")
_CRYPTOFEED_RECV = re.compile(r"^(\d+(?:\.\d+)?): (.*)$", re.S)
_CRYPTOFEED_REST = re.compile(r"^(\S+) -> (\d+(?:\.\d+)?): (.*)$", re.S)
_CRYPTOFEED_CONNECT = re.compile(r"^(\S+) <-> (\d+(?:\.\d+)?)$")
_SYMBOL = re.compile(rb'"s":"([A-Za-z0-9_]+)"')
_REST_ENDPOINTS = {"openInterest": "https://fapi.binance.com/fapi/v1/openInterest?symbol={}"}


class CaptureFormatError(ValueError):
    pass


def _seconds_to_ns(text: str) -> int:
    return int(Decimal(text) * 1_000_000_000)


def _open_text(path: Path) -> bytes:
    raw = path.read_bytes()
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw


def detect(path: Path) -> str:
    with path.open("rb") as handle:
        if handle.read(4) == capture_log.MAGIC:
            return "ticklake"
    head = _open_text(path)[:4096].lstrip()
    if _HFT_LINE.match(head):
        return "hftbacktest"
    if head.startswith((b"wss://", b"ws://", b"http", b"configuration:")) or re.match(rb"^\d+\.\d+: ", head):
        return "cryptofeed"
    if head.startswith(b'{"localTimestamp"'):
        return "tardis-machine"
    if _TARDIS_LINE.match(head):
        return "tardis"
    if head.startswith(b"{"):
        return "jsonl"
    if head.startswith(b"interactions:"):
        return "vcr"
    raise CaptureFormatError(f"{path}: not a capture format ticklake reads")


def read_cryptofeed(path: Path) -> Iterator[Frame]:
    connection = f"{path.name}#0"
    connections = 0
    for line in _open_text(path).decode().splitlines():
        if not line or line.startswith("configuration:"):
            continue
        if line[0].isdigit():
            match = _CRYPTOFEED_RECV.match(line)
            if match:
                text = match.group(2)
                payload = eval_bytes_literal(text) if text.startswith(("b'", 'b"')) else text.encode()
                yield Frame(_seconds_to_ns(match.group(1)), "ws", payload, connection_id=connection)
            continue
        if match := _CRYPTOFEED_REST.match(line):
            yield Frame(_seconds_to_ns(match.group(2)), "rest", match.group(3).encode(), url=match.group(1),
                        connection_id=connection)
        elif _CRYPTOFEED_CONNECT.match(line):
            connections += 1
            connection = f"{path.name}#{connections}"


def eval_bytes_literal(text: str) -> bytes:
    """A Python bytes literal as cryptofeed writes binary frames, without eval()."""
    import ast

    value = ast.literal_eval(text)
    if not isinstance(value, bytes):
        raise CaptureFormatError(f"not a bytes literal: {text[:40]}")
    return value


def read_hftbacktest(path: Path) -> Iterator[Frame]:
    symbol = ""
    for line in _open_text(path).splitlines():
        if not line:
            continue
        stamp, _, payload = line.partition(b" ")
        ts_recv = int(stamp)
        if payload.startswith(b'{"lastUpdateId"'):
            yield Frame(ts_recv, "rest", payload, url=f"https://fapi.binance.com/fapi/v1/depth?symbol={symbol}",
                        connection_id=path.name)
            continue
        if found := _SYMBOL.search(payload):
            symbol = found.group(1).decode()
        yield Frame(ts_recv, "ws", payload, connection_id=path.name)


class _Generated(msgspec.Struct, kw_only=True):
    stream: str = ""
    """Binance-style wrappers name their stream; OKX's generated frames (`liquidations`) have none
    and stay WebSocket frames."""
    data: msgspec.Raw
    generated: bool = False


_generated = msgspec.json.Decoder(_Generated)


def _recorded(payload: bytes, ts_recv: int, connection_id: str) -> Frame:
    """A recorded venue message as a Frame: tardis's generated REST polls become the REST frame of
    their endpoint."""
    if b'"generated":true' in payload:
        wrapper = _generated.decode(payload)
        symbol, _, channel = wrapper.stream.partition("@")
        template = _REST_ENDPOINTS.get(channel)
        if template:
            return Frame(ts_recv, "rest", bytes(wrapper.data), url=template.format(symbol.upper()),
                         connection_id=connection_id)
    return Frame(ts_recv, "ws", payload, connection_id=connection_id)


def read_jsonl(path: Path) -> Iterator[Frame]:
    for line in _open_text(path).splitlines():
        line = line.strip()
        if line:
            yield _recorded(line, 0, path.name)


def _iso_to_ns(text: bytes) -> int:
    """`2019-06-01T00:00:00.0130567Z` -> ns since the epoch, exactly."""
    match = _TARDIS_LINE.match(text)
    if match is None:
        raise CaptureFormatError(f"not an ISO 8601 UTC time: {text[:40]!r}")
    seconds = calendar.timegm(time.strptime(match.group(1).decode(), "%Y-%m-%dT%H:%M:%S"))
    return seconds * 1_000_000_000 + int((match.group(2) or b"").ljust(9, b"0"))


def read_tardis(path: Path) -> Iterator[Frame]:
    disconnects = 0
    for line in _open_text(path).splitlines():
        match = _TARDIS_LINE.match(line)
        if match is None:
            if line.strip():
                raise CaptureFormatError(f"{path}: not a tardis line: {line[:60]!r}")
            continue
        payload = line[match.end():].strip()
        if payload:
            yield _recorded(payload, _iso_to_ns(line), f"{path.name}#{disconnects}")
        else:
            disconnects += 1


class _TardisMessage(msgspec.Struct):
    localTimestamp: str
    message: msgspec.Raw = msgspec.Raw(b"null")


_tardis_message = msgspec.json.Decoder(_TardisMessage)


def read_tardis_machine(path: Path) -> Iterator[Frame]:
    disconnects = 0
    for line in _open_text(path).splitlines():
        if not line.strip():
            continue
        entry = _tardis_message.decode(line)
        if bytes(entry.message) == b"null":
            disconnects += 1
            continue
        yield _recorded(bytes(entry.message), _iso_to_ns(entry.localTimestamp.encode()),
                        f"{path.name}#{disconnects}")


def _header(headers: dict[str, list[str]], name: str) -> str | None:
    for key, values in headers.items():
        if key.lower() == name:
            return values[0] if isinstance(values, list) else values
    return None


def _text(value: str | bytes) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def read_vcr(path: Path) -> Iterator[Frame]:
    import yaml

    cassette = yaml.safe_load(_open_text(path))
    for interaction in cassette.get("interactions") or ():
        request, response = interaction["request"], interaction["response"]
        if response["status"]["code"] != 200:
            continue
        date = _header(response.get("headers") or {}, "date")
        ts_recv = int(email.utils.parsedate_to_datetime(date).timestamp()) * 1_000_000_000 if date else 0
        body = request.get("body")
        url = request["uri"] + (f"#{_text(body).decode()}" if body else "")
        yield Frame(ts_recv, "rest", _text(response["body"]["string"]), url=url, connection_id=path.name)


READERS = {"cryptofeed": read_cryptofeed, "hftbacktest": read_hftbacktest, "jsonl": read_jsonl,
           "tardis": read_tardis, "tardis-machine": read_tardis_machine, "ticklake": capture_log.read_capture_log,
           "vcr": read_vcr}


def read_capture(path: Path) -> Iterator[Frame]:
    return READERS[detect(path)](path)


def read_frames(paths: Iterable[Path]) -> Iterator[Frame]:
    """Frames of several files of one run, merged by receive time (stable within a file)."""
    return heapq.merge(*(read_capture(p) for p in paths), key=lambda frame: frame.ts_recv)
