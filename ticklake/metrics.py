"""Prometheus metrics of the long-running commands, on `--metrics-port`.

Feed handlers keep plain counters (HandlerStats) on their hot path; a collector turns them into
metrics only when Prometheus scrapes, so counting costs one integer add per frame.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import fields

from prometheus_client import REGISTRY, start_http_server
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from ingest.feed_handler import FeedHandler, HandlerStats

_HELP = {
    "frames": "WebSocket frames received",
    "overflows": "Frames dropped because the handler queue was full (each journalled as a gap)",
    "connects": "WebSocket connections opened",
    "disconnects": "WebSocket connections ended",
    "stale": "Connections replaced after a silence longer than stale_after_s",
    "silent_after_connect": "Connections that carried no data frame within their route's bound after the "
                            "handshake (a retired or wrong URL), each replaced with backoff",
    "snapshots": "REST book snapshots requested",
    "backfills": "REST trade backfills requested",
    "rest_errors": "Failed REST requests",
}


class HandlerCollector(Collector):
    def __init__(self, handlers: Callable[[], list[FeedHandler]]) -> None:
        self.handlers = handlers

    def collect(self) -> Iterator[Metric]:
        for field in fields(HandlerStats):
            family = CounterMetricFamily(f"ticklake_handler_{field.name}", _HELP[field.name],
                                         labels=["venue", "shard"])
            for handler in self.handlers():
                family.add_metric([handler.connection.venue, handler.label], getattr(handler.stats, field.name))
            yield family


def serve(port: int, handlers: Callable[[], list[FeedHandler]] | None = None) -> None:
    """Expose the default registry (publisher and sink metrics) plus the handlers', if any, on
    all interfaces (Prometheus usually scrapes from another host or container); 0 means off."""
    if not port:
        return
    if handlers is not None:
        REGISTRY.register(HandlerCollector(handlers))
    start_http_server(port)
