"""Prometheus metrics of one alarmdesk process (``GET /metrics``, docs/operations.md).

Two kinds, both in a registry of the process's own (a test process may run several):

- **measured on the way**: the writer observes each committed transaction — its size in
  signals, how long it took, how long its requests waited in the queue — and counts signals
  by source kind and outcome and the escalations it fired. An observation is a few
  microseconds per transaction, not per signal.
- **read at scrape time**: what the components already count for themselves (the DC-09
  receiver's replies and refusals, the MQTT client's acknowledgements, the live stream's
  clients, the writer's queue) and the audit log's newest checkpoint, read when Prometheus
  asks; the alarm path pays nothing for them.

Nothing here is incident data: counts, sizes and durations only; no id, no text.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from alarmdesk.store import tables as t

__all__ = ["CONTENT_TYPE", "Metric", "Metrics", "audit_metrics", "counter", "gauge"]

# Served as "text/plain; version=0.0.4; charset=utf-8": Litestar adds the charset to text/*.
CONTENT_TYPE: Final = "text/plain; version=0.0.4"

_BATCH_BUCKETS: Final = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
_SECONDS_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class _Scraped(Collector):
    """Metrics read from the components when Prometheus scrapes."""

    def __init__(self, sources: list[Callable[[], Iterable[Metric]]]) -> None:
        self.sources = sources

    def collect(self) -> Iterator[Metric]:
        for source in self.sources:
            yield from source()


class Metrics:
    """One process's metrics. The writer holds one; the web app serves it."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.signals = Counter(
            "alarmdesk_signals",
            "Signals the writer took, by source kind and outcome (stored; or the refusal's "
            "code; failed: the transaction failed)",
            ["source", "outcome"],
            registry=r,
        )
        self.commit_size = Histogram(
            "alarmdesk_commit_batch_signals",
            "Signals committed per writer transaction",
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.commit_seconds = Histogram(
            "alarmdesk_commit_seconds",
            "Duration of a writer transaction, pipeline and COMMIT",
            buckets=_SECONDS_BUCKETS,
            registry=r,
        )
        self.lag_seconds = Histogram(
            "alarmdesk_pipeline_lag_seconds",
            "From a request reaching the writer's queue to its transaction's COMMIT",
            buckets=_SECONDS_BUCKETS,
            registry=r,
        )
        self.commit_failures = Counter(
            "alarmdesk_commit_failures", "Writer transactions that failed", registry=r
        )
        self.parked = Counter(
            "alarmdesk_signals_parked",
            "Queued signals parked after failing alone, try after try (distributed mode; "
            "alarmdesk parked list)",
            registry=r,
        )
        self.escalations = Counter(
            "alarmdesk_escalations",
            "Escalation steps fired (nobody acknowledged, no unit)",
            registry=r,
        )
        self._sources: list[Callable[[], Iterable[Metric]]] = []
        r.register(_Scraped(self._sources))

    def watch(self, source: Callable[[], Iterable[Metric]]) -> None:
        """Adds metrics read at scrape time (a function yielding metric families)."""
        self._sources.append(source)

    def render(self) -> bytes:
        """The text exposition format Prometheus reads."""
        return generate_latest(self.registry)

    # -- the writer's observations -------------------------------------------------------------

    def committed(
        self,
        signals: Iterable[tuple[str, str, int]],
        size: int,
        seconds: float,
        queued: Iterable[float],
        escalations: int,
    ) -> None:
        """One writer transaction: (source kind, outcome, count) per request of signals, the
        signals it stored, its duration, when each request was queued (monotonic)."""
        for source, outcome, n in signals:
            self.signals.labels(source, outcome).inc(n)
        self.commit_size.observe(size)
        self.commit_seconds.observe(seconds)
        now = time.monotonic()
        for at in queued:
            self.lag_seconds.observe(now - at)
        if escalations:
            self.escalations.inc(escalations)


def counter(name: str, doc: str, values: Mapping[str, float], label: str) -> CounterMetricFamily:
    """A counter family with one labelled series per key of ``values``."""
    family = CounterMetricFamily(name, doc, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family


def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def audit_metrics(engine: sa.Engine, clock: Callable[[], datetime]) -> Callable[[], Iterator[Any]]:
    """The audit log's newest signed checkpoint: how many entries it covers and its age (an
    alert when signing stops). Read from the database, whichever process signed it."""

    def read() -> Iterator[Any]:
        c = t.audit_checkpoints.c
        with engine.connect() as conn:
            count, size, at = conn.execute(
                sa.select(sa.func.count(), sa.func.max(c.size), sa.func.max(c.at))
            ).one()
        yield gauge("alarmdesk_audit_checkpoints", "Signed audit checkpoints", count or 0)
        yield gauge(
            "alarmdesk_audit_checkpoint_entries",
            "Audit entries covered by the newest signed checkpoint",
            size or 0,
        )
        if at is not None:
            yield gauge(
                "alarmdesk_audit_checkpoint_age_seconds",
                "Seconds since the newest audit checkpoint was signed",
                max(0.0, (clock() - at).total_seconds()),
            )

    return read
