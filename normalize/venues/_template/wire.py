"""The venue's messages as they are on the wire: one msgspec Struct per channel and REST body,
field names as the venue sends them, each with a one-line comment, and their decoders."""

from __future__ import annotations

import msgspec

VENUE = "template"
MS = 1_000_000


class Envelope(msgspec.Struct, frozen=True):
    """What every frame of the venue starts with (its channel or event name, say)."""

    channel: str = ""  # which stream the frame belongs to


envelope_decoder = msgspec.json.Decoder(Envelope, strict=False)
