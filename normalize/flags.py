"""Per-record flag bits, modelled on Databento's record flags.

Flags travel with every record (the `flags` column) so that a consumer can tell, row by row,
whether a value is trustworthy without consulting any side channel.
"""

from enum import IntFlag
from typing import Final


class Flag(IntFlag):
    """Bit set stored in every record's `flags` column (int32)."""

    SNAPSHOT = 1
    """The row belongs to a full book snapshot, not an incremental change."""
    LAST = 2
    """Last row produced from one venue message: apply rows up to here atomically."""
    GAP_BEFORE = 4
    """Data may be missing before this row (sequence gap, reconnect, overflow)."""
    MAYBE_BAD_BOOK = 8
    """The book this row belongs to is known or suspected to be wrong."""
    TS_EVENT_IMPUTED = 16
    """The venue gave no event time; ts_event was taken from another clock."""
    FROM_REST = 32
    """The value came from a REST poll, not the streaming feed."""
    DERIVED = 64
    """Computed by ticklake (e.g. BBO from the book), not sent by the venue as such."""
    INEXACT = 128
    """A decimal in the source frame has more than 15 significant digits and cannot
    round-trip through float64; the raw capture keeps the exact text."""
    SAMPLED = 256
    """The venue publishes only a sample of these events (e.g. Binance forceOrder)."""
    DEPTH_LIMITED = 512
    """The venue publishes only the top levels of this book (e.g. Hyperliquid's 20 per side):
    a level that leaves that window is removed here though it may still rest on the venue."""
    TRAILING = 1024
    """The value accrued over the interval ending at ts_event (a funding rate a venue charges
    continuously: Deribit's `funding_8h`), not one announced for a later time."""


# Plain-int aliases for hot paths: arithmetic on IntFlag members costs about 0.5 us per operation,
# more than building a record. Values come from Flag, so there is still one definition.
SNAPSHOT: Final = int(Flag.SNAPSHOT)
LAST: Final = int(Flag.LAST)
GAP_BEFORE: Final = int(Flag.GAP_BEFORE)
MAYBE_BAD_BOOK: Final = int(Flag.MAYBE_BAD_BOOK)
TS_EVENT_IMPUTED: Final = int(Flag.TS_EVENT_IMPUTED)
FROM_REST: Final = int(Flag.FROM_REST)
DERIVED: Final = int(Flag.DERIVED)
INEXACT: Final = int(Flag.INEXACT)
SAMPLED: Final = int(Flag.SAMPLED)
DEPTH_LIMITED: Final = int(Flag.DEPTH_LIMITED)
TRAILING: Final = int(Flag.TRAILING)
