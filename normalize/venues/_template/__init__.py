"""A template venue package: copy `normalize/venues/_template/` and `ingest/venues/_template/` to a
package named for the venue, fill each module in, and add the venue's SPEC to
ingest/venues/registry.py. Every module name is fixed, so a reader of one venue finds everything
in the next:

* `wire.py`: the venue's messages as msgspec Structs, field names as on the wire (one comment
  each), and their decoders;
* `instruments.py` (where the venue needs one): ids from symbols, the instrument master;
* `book_sync.py`: the per-symbol book state the venue's sequence or checksum rules run on;
* `normalizer.py`: the class implementing normalize.venues.interface.VenueNormalizer.

The package docstring lists every channel with a real sample frame and what it becomes (see
normalize/venues/binance_usdm/__init__.py). The template itself is a venue that reads nothing:
each frame is a dead letter saying so, which the interface test runs.
"""

from normalize.venues._template.normalizer import Template
from normalize.venues._template.wire import VENUE

__all__ = ["VENUE", "Template"]
