"""Splitting a venue's symbols across processes: a stable hash, so every host agrees.

`--shard K/N` keeps the symbols whose CRC-32 modulo N is K. CRC-32 rather than Python's hash:
the latter is salted per process, and two hosts must pick disjoint sets that cover the list.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence


class ShardError(ValueError):
    """A shard spec the user must fix."""


def parse_shard(text: str) -> tuple[int, int]:
    """'K/N' -> (K, N) with 0 <= K < N."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise ShardError(f"shard must look like K/N (e.g. 0/2), not '{text}'") from None
    if not 0 <= index < count:
        raise ShardError(f"shard {text}: need 0 <= K < N")
    return index, count


def shard_of(symbol: str, count: int) -> int:
    return zlib.crc32(symbol.upper().encode()) % count


def select(symbols: Sequence[str], shard: tuple[int, int] | None) -> list[str]:
    if shard is None:
        return list(symbols)
    index, count = shard
    return [s for s in symbols if shard_of(s, count) == index]
