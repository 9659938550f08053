"""The normalizer: frames in receive order -> contract records (normalize.records), dead letters
with their reason, and the REST requests the books need (normalize.emitted.Emitted)."""

from __future__ import annotations

import msgspec

from normalize.emitted import DeadLetter, Emitted
from normalize.venues._template.book_sync import BookSync
from normalize.venues._template.wire import VENUE, envelope_decoder
from normalize.venues.books import SymbolBooks


class Template(SymbolBooks):
    venue = VENUE

    def __init__(self, connection_id: str = "offline") -> None:
        self.connection_id = connection_id
        self.books: dict[str, BookSync] = {}

    def on_ws(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        try:
            channel = envelope_decoder.decode(payload).channel
        except msgspec.DecodeError as exc:
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"undecodable frame: {exc}", payload))
            return
        out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"channel {channel!r}: not normalized yet", payload))

    def on_rest(self, url: str, payload: bytes, ts_recv: int, out: Emitted) -> None:
        out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"REST {url}: not normalized yet", payload))

    def reset_book(self, symbol: str, ts_recv: int, reason: str, out: Emitted) -> None:
        sync = self.books.get(symbol)
        if sync is not None and sync.synced:
            sync.synced = False
            sync.breaks += 1
            out.snapshot_requests.add(symbol)
