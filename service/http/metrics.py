"""Prometheus metrics, counted from what the ledger commits (so they match the log)."""

from __future__ import annotations

import sqlite3

from litestar import Response, get
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from service.ledger.writer import Batch
from service.storage import outbox
from service.storage.readpool import ReadPool
from service.storage.textindex import TextIndex

__all__ = ["Metrics", "metrics_endpoint"]

#: Litestar appends `; charset=utf-8` to every text/ media type; Prometheus' own constant
#: already ends with it, and would reach the scraper twice.
MEDIA_TYPE = CONTENT_TYPE_LATEST.removesuffix("; charset=utf-8")


class Metrics:
    """One registry per app, so that several apps in one process (tests) do not collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events = Counter(
            "psa_ledger_events",
            "Events appended to the log",
            ["action", "outcome"],
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "psa_ledger_batch_events",
            "Events per committed batch (group commit)",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            registry=self.registry,
        )

        self.callbacks = Gauge(
            "psa_ledger_callbacks",
            "Callbacks to N-central in the outbox, by status",
            ["status"],
            registry=self.registry,
        )
        self.text_index = Gauge(
            "psa_ledger_text_index_position",
            "The log position the console's text index covers (-1 while it is not built)",
            registry=self.registry,
        )

    def count(self, batch: Batch) -> None:
        """Called after each commit: only durable events are counted."""
        self.batch_size.observe(len(batch.events))
        for event in batch.events:
            self.events.labels(event.action, event.outcome).inc()


@get("/metrics", tags=["health"], media_type=MEDIA_TYPE)
async def metrics_endpoint(metrics: Metrics, reads: ReadPool, texts: TextIndex) -> Response[bytes]:
    """Prometheus text format. Needs no credentials, as CONTRACT §5 says.

    Outbox sizes are read at scrape time: a dead letter must show up in the operator's
    alerting even after a restart, which a counter kept in memory would not.
    """
    for status, count in await reads.run(_callbacks_by_status):
        metrics.callbacks.labels(status).set(count)
    bookmark = texts.bookmark
    metrics.text_index.set(-1 if bookmark is None else bookmark)
    return Response(generate_latest(metrics.registry), media_type=MEDIA_TYPE)


def _callbacks_by_status(db: sqlite3.Connection) -> list[tuple[str, int]]:
    counts = dict.fromkeys(("pending", "delivered", "dead"), 0)
    counts |= outbox.count_by_status(db)
    return list(counts.items())
