"""Bus subjects and message ids, derived from the contract so publishers and sinks agree.

Subject: `<prefix>.<record type>.<venue>.<instrument>` (instrument `_` for connection-wide
rows). The message id is a hash of the envelope's content without what is local to one
receiver (ts_recv, connection_id), unless the record's key holds it (a book_top sample is the
book at its ts_recv; a journal row is its connection's): a re-publish of the same envelope, or
the same envelope from a redundant handler on another host, is dropped by JetStream's duplicate
window, while two envelopes that differ in any venue value, or in the key, never share an id
(that would lose data). Envelopes of two handlers are cut at different moments, so most differ:
the sinks deduplicate by record key (storage.record_keys).
"""

from __future__ import annotations

import hashlib
import operator
import re
from collections.abc import Sequence
from functools import cache

import msgspec

from normalize.records import Record

_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]")
_LOCAL_COLUMNS = {"ts_recv", "connection_id"}
_encoder = msgspec.msgpack.Encoder()


def subject_token(text: str) -> str:
    """A NATS subject token: no dots, wildcards or spaces; empty becomes `_`."""
    return _UNSAFE.sub("_", text) or "_"


def subject_for(prefix: str, record_type: str, venue: str, instrument: str) -> str:
    return f"{prefix}.{record_type}.{subject_token(venue)}.{subject_token(instrument)}"


@cache
def _identity(cls: type[Record]) -> operator.attrgetter[tuple[object, ...]]:
    local = _LOCAL_COLUMNS - set(cls.key_columns)
    return operator.attrgetter(*(c for c in cls.__struct_fields__ if c not in local))


def message_id(records: Sequence[Record]) -> str:
    """Deterministic id of an envelope's content (see module docstring)."""
    first = records[0]
    identity = _identity(type(first))
    digest = hashlib.blake2b(digest_size=16)
    digest.update(_encoder.encode((first.record_type, first.venue, first.instrument, len(records))))
    digest.update(_encoder.encode([identity(r) for r in records]))
    return digest.hexdigest()
