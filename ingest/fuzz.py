"""Mutated real frames, to find what makes a normalizer raise instead of rejecting a frame.

A venue can send anything: a field missing, a number as text, `nan`, an enum value added since
our code was written, a frame cut short. Every such frame must become a dead letter with a reason
(or a record, if it still means something), never an exception. `mutate` derives one such frame
from a real one; `fuzz` feeds a stream of them, with frames also reordered and duplicated, to a
fresh normalizer and collects every exception that escapes its `on_ws`/`on_rest`.

The tests run a bounded fuzz over every venue's captures (tests/test_fuzz_normalizers.py);
`python -m benchmarks.fuzz_normalizers --frames 100000` runs a long one.
"""

from __future__ import annotations

import json
import random
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ingest.frames import Frame
from normalize.emitted import Emitted
from normalize.venues.interface import VenueNormalizer

Leaf = tuple[list[Any], Any]
"""(path of keys and indexes from the root, value) of one JSON value."""

_ODD_TEXT = ("", "nan", "NaN", "inf", "-inf", "Infinity", "1e400", "-0", "0x10", "1_000", " 1", "UNKNOWN_ENUM",
             "null", "[]", "BUY ", "\u00e9", "9" * 40)
_ODD_NUMBERS = (0, -1, -(2**63), 2**64, 10**30, -1e308, 1e308, 0.1, -0.0, 3.5)
_ODD_TYPES: tuple[Any, ...] = (None, True, [], {}, "text", 7, 7.5, [[]], [["1", "2", "3"]], {"x": 1})


def _leaves(value: Any, path: list[Any]) -> Iterator[Leaf]:
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, [*path, key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, [*path, index])


def _set(root: Any, path: list[Any], value: Any) -> Any:
    if not path:
        return value
    parent = root
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return root


def _delete(root: Any, path: list[Any]) -> Any:
    if not path:
        return root
    parent = root
    for step in path[:-1]:
        parent = parent[step]
    del parent[path[-1]]
    return root


def _odd_value(rng: random.Random, old: Any) -> Any:
    """A value of the kind that trips parsers: odd text, extreme numbers, another type."""
    kind = rng.randrange(4)
    if kind == 0:
        return rng.choice(_ODD_TEXT)
    if kind == 1:
        return rng.choice(_ODD_NUMBERS)
    if kind == 2:
        return str(rng.choice(_ODD_NUMBERS)) if isinstance(old, str) else rng.choice(_ODD_TYPES)
    return rng.choice(_ODD_TYPES)


def mutate(payload: bytes, rng: random.Random) -> tuple[bytes, str]:
    """One mutation of a frame and what it was: a value replaced, a field removed, the frame cut
    short, or bytes flipped (for frames that are not JSON)."""
    try:
        document = json.loads(payload)
    except ValueError:
        document = None
    choice = rng.randrange(10)
    if document is None or choice == 0:
        cut = rng.randrange(len(payload) + 1)
        return payload[:cut], f"truncated at {cut}"
    leaves = list(_leaves(document, []))
    path, old = rng.choice(leaves)
    if choice <= 2 and path:
        return json.dumps(_delete(document, path), separators=(",", ":")).encode(), f"removed {path}"
    if choice == 3 and isinstance(old, list) and old:
        return json.dumps(_set(document, path, old[: rng.randrange(len(old))]),
                          separators=(",", ":")).encode(), f"shortened {path}"
    new = _odd_value(rng, old)
    return json.dumps(_set(document, path, new), separators=(",", ":")).encode(), f"{path}: {old!r:.40} -> {new!r:.40}"


@dataclass(frozen=True)
class Escape:
    """An exception that left a normalizer: the frame, the mutation, and where it was raised."""

    venue: str
    kind: str
    mutation: str
    exception: str
    where: str
    payload: bytes


def _where(exc: BaseException) -> str:
    frame = traceback.extract_tb(exc.__traceback__)[-1]
    return f"{frame.filename.rsplit('/', 2)[-2:]}:{frame.lineno} {frame.name}"


def fuzz(venue: str, make: Callable[[], VenueNormalizer], frames: Sequence[Frame], count: int, seed: int,
         mutate_share: float = 0.5) -> tuple[list[Escape], Emitted]:
    """Feed `count` frames drawn from `frames` (in order, with jumps back and repeats; a share of
    them mutated) to one normalizer; returns the exceptions that escaped and what it emitted."""
    rng = random.Random(seed)
    normalizer = make()
    escapes: list[Escape] = []
    out = Emitted()
    position = 0
    for _ in range(count):
        move = rng.random()
        if move < 0.05:
            position = rng.randrange(len(frames))  # reordered: jump anywhere
        elif move < 0.10:
            position = max(0, position - 1)  # duplicated: the previous frame again
        frame = frames[position % len(frames)]
        position += 1
        payload, mutation = frame.payload, "none"
        if rng.random() < mutate_share:
            payload, mutation = mutate(payload, rng)
        try:
            if frame.kind == "ws":
                normalizer.on_ws(payload, frame.ts_recv, out)
            else:
                normalizer.on_rest(frame.url, payload, frame.ts_recv, out)
        except Exception as exc:  # what the fuzz is looking for
            escapes.append(Escape(venue, frame.kind, mutation, f"{type(exc).__name__}: {exc}"[:300], _where(exc),
                                  payload[:2000]))
    return escapes, out
