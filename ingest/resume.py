"""A restarted handler carries on from the trades the bus already holds.

A handler killed with SIGKILL loses what it had received and not yet published, and a restarted one
misses what the venue sent while it was away. Where trade ids count up by one per symbol, the normalizer
finds both as one jump between the last trade on the bus and the first one it receives, journals it
(`trade_gap`) and fetches the missing trades over REST, as it does for a gap while running. For that,
before connecting, each normalizer is told the last trades published for its venue: the newest
envelope on every trade subject of the venue (JetStream keeps the last message per subject at hand).

Only envelopes younger than `max_age_s` count: after a longer absence the backfill would be thousands
of REST pages, queued before the book snapshots on the handler's one REST slot. Such a restart starts
fresh, as before (one log line says so).
"""

from __future__ import annotations

import logging
import time

import nats.errors
import nats.js
from nats.js.errors import NotFoundError

from ingest.publisher import BusConfig
from normalize.bus_keys import subject_token
from normalize.codec import CodecError, decode
from normalize.records import Trade

log = logging.getLogger(__name__)

MAX_AGE_S = 600.0
"""Default: how recent the last published trade must be for a restart to backfill from it."""


async def published_trades(js: nats.js.JetStreamContext, config: BusConfig, venue: str,
                           max_age_s: float = MAX_AGE_S) -> list[Trade]:
    """The trades of the newest envelope on each of the venue's trade subjects, if younger than
    `max_age_s` (bus time); none when the stream does not exist yet."""
    pattern = f"{config.subject_prefix}.trade.{subject_token(venue)}.>"
    try:
        info = await js.stream_info(config.stream, subjects_filter=pattern)
    except NotFoundError:
        return []
    except (nats.errors.Error, TimeoutError) as exc:  # the bus away: the handler starts anyway, and spools
        log.warning("%s: the bus did not say which trades it holds (%s): not resumed from", venue,
                    type(exc).__name__)
        return []
    trades: list[Trade] = []
    stale = 0
    for subject in sorted(info.state.subjects or {}):
        try:
            message = await js.get_last_msg(config.stream, subject)
        except NotFoundError:  # aged out between the two calls
            continue
        except (nats.errors.Error, TimeoutError) as exc:
            log.warning("%s: reading the last envelope on %s failed (%s): not resumed from", venue, subject,
                        type(exc).__name__)
            continue
        if message.time is None or time.time() - message.time.timestamp() > max_age_s:
            stale += 1
            continue
        try:
            _, records = decode(message.data or b"")
        except CodecError as exc:  # the sinks dead-letter such an envelope; here it only cannot help
            log.warning("%s: the last envelope on %s is unreadable (%s); not resumed from", venue, subject, exc)
            continue
        trades.extend(r for r in records if isinstance(r, Trade))
    if stale:
        log.info("%s: the last trades of %d instruments on the bus are over %.0f s old: not backfilled from", venue,
                 stale, max_age_s)
    return trades
