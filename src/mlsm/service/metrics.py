"""The service's Prometheus metrics (``GET /metrics``): requests, models, grouping, the writer and reloads.

Each service instance has its own registry (no global state). With several worker processes the values live in
files under ``PROMETHEUS_MULTIPROC_DIR`` (set by the supervisor before the workers start), and a scrape of any
worker sums all of them. The preflight gauge is the exception: it describes the live set of the worker that
answers the scrape (every worker preflights the same code), so it is never summed, and a model that no longer
serves leaves it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from mlsm.runs._counts import tally_slots

__all__ = ["FLUSH_SECONDS", "GROUP_BUCKETS", "LATENCY_BUCKETS", "ServiceMetrics"]

#: How long (seconds) counted results of a single-process service may wait before they reach the counters (a scrape
#: adds them first, so it never sees fewer; with several workers they are counted at once).
FLUSH_SECONDS = 1.0

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
GROUP_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096)


class ServiceMetrics:
    """Counters, gauges and histograms of one service process, and their text exposition."""

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "mlsm_http_requests",
            "HTTP requests answered, by endpoint, method and status",
            ["endpoint", "method", "status"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "mlsm_http_request_duration_seconds",
            "Time from request to response, by endpoint, method and status",
            ["endpoint", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.model_results = Counter(
            "mlsm_model_results", "Result slots produced, by model (name@version)", ["model"], registry=r
        )
        self.model_errors = Counter(
            "mlsm_model_errors",
            "Result slots holding _error (invalid input, exception, bad output, timeout), by model",
            ["model"],
            registry=r,
        )
        self.model_seconds = Histogram(
            "mlsm_model_call_duration_seconds",
            "Time of one model call, by model (a batch model's call scores a whole group)",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.group_records = Histogram(
            "mlsm_scoring_group_records",
            "Records scored per engine call (grouping of concurrent requests)",
            buckets=GROUP_BUCKETS,
            registry=r,
        )
        self.group_seconds = Histogram(
            "mlsm_scoring_group_duration_seconds",
            "Time of one engine call (a group of records), from dispatch to results",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.records = Counter("mlsm_records_scored", "Records scored", registry=r)
        self.stored = Counter("mlsm_results_stored", "Result documents committed to the store", registry=r)
        self.outcomes = Counter(
            "mlsm_outcomes_stored", "Outcomes committed to the store (POST /v1/outcomes)", registry=r
        )
        self.write_seconds = Histogram(
            "mlsm_store_write_duration_seconds",
            "Time of one store write (a batch)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.write_failures = Counter(
            "mlsm_store_write_failures", "Store writes given up on (their requests got 503)", registry=r
        )
        self.rejected = Counter(
            "mlsm_results_not_stored",
            "Requests whose results were not stored, by reason (queue_full, store: 503; refused by the store: 422)",
            ["reason"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "mlsm_writer_queue_documents",
            "Result documents waiting for the store",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.generation = Gauge(
            "mlsm_model_set_generation",
            "Generation of the live model set (1 at start, +1 per reload)",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.reloads = Counter("mlsm_reloads", "Reloads attempted, by outcome (ok, refused)", ["outcome"], registry=r)
        self.connections_closed = Counter(
            "mlsm_connections_closed",
            "Connections refused or closed by a limit, by limit (max_connections: refused at the cap, idle_closed: "
            "closed to admit a new one, header_timeout, header_too_large, body_timeout, keep_alive_timeout)",
            ["reason"],
            registry=r,
        )
        self.connections_open = Gauge(
            "mlsm_connections_open",
            "Client connections open now (idle keep-alive ones included; refused ones are not)",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.stuck_calls = Gauge(
            "mlsm_model_stuck_calls",
            "Model calls cut off by their time limit that are still running",
            ["model"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.preflight = _PreflightGauge()
        r.register(self.preflight)
        self._children: dict[tuple[str, ...], Any] = {}
        self._lock = threading.Lock()
        self._stuck_seen: set[str] = set()
        # results counted since the last flush: ``count_results`` is called for every request, and six counter
        # increments (each with its lock, and in multiprocess mode a write to a shared file) cost more than the
        # tally itself
        self._tallies: dict[str, list[int]] = {}
        self._tallied = 0
        self._flushed = time.monotonic()
        self._tally_lock = threading.Lock()

    # -- hooks -------------------------------------------------------------------------------------------------

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        key = ("request", endpoint, method, str(status))
        children = self._children.get(key)
        if children is None:
            labels = (endpoint, method, str(status))
            children = self._children[key] = (self.requests.labels(*labels), self.request_seconds.labels(*labels))
        children[0].inc()
        children[1].observe(seconds)

    def on_model_call(self, model: str, seconds: float, rows: int) -> None:
        """The engine's ``on_call`` hook: one model call took ``seconds`` (called from scoring threads)."""
        self._child("call", model, self.model_seconds).observe(seconds)

    def count_results(self, results: list[dict[str, Any]]) -> None:
        """Count each model's result and error slots in scored records (in one process: into the counters at most
        ``FLUSH_SECONDS`` later, and before any scrape)."""
        with self._tally_lock:
            tally_slots(results, self._tallies)
            self._tallied += len(results)
            # with several workers another worker's scrape reads this one's files, and an idle worker would never
            # flush: counted at once there
            due = self.multiprocess or time.monotonic() - self._flushed >= FLUSH_SECONDS
        if due:
            self.flush()

    def flush(self) -> None:
        """Add the results counted so far to the counters."""
        with self._tally_lock:
            tallies, self._tallies = self._tallies, {}
            tallied, self._tallied = self._tallied, 0
            self._flushed = time.monotonic()
        if tallied:
            self.records.inc(tallied)
        for key, (ok, errors) in tallies.items():
            self._child("results", key, self.model_results).inc(ok + errors)
            if errors:
                self._child("errors", key, self.model_errors).inc(errors)

    def on_group(self, records: int, seconds: float) -> None:
        """One engine call scored ``records`` records in ``seconds``."""
        self.group_records.observe(records)
        self.group_seconds.observe(seconds)

    def on_write(self, documents: int, seconds: float) -> None:
        """The writer committed ``documents`` in ``seconds``."""
        self.stored.inc(documents)
        self.write_seconds.observe(seconds)

    def on_write_failure(self) -> None:
        """The writer gave up on a batch."""
        self.write_failures.inc()

    def on_connection_open(self, opened: bool) -> None:
        """A client connection was accepted (``opened``) or has gone."""
        if opened:
            self.connections_open.inc()
        else:
            self.connections_open.dec()

    def on_connection_closed(self, reason: str) -> None:
        """A connection limit refused or closed a connection (see :mod:`mlsm.service.connections`)."""
        self._child("closed", reason, self.connections_closed).inc()

    def set_preflight(self, reports: Mapping[str, Any]) -> None:
        """The live set's preflight reports (``name@version``:
        :class:`~mlsm.lifecycle.preflight.PreflightReport`), replacing the previous set's."""
        self.preflight.failing = {key: report.failing for key, report in reports.items()}

    def _child(self, kind: str, label: str, metric: Any) -> Any:
        key = (kind, label)
        child = self._children.get(key)
        if child is None:
            with self._lock:
                child = self._children.get(key)
                if child is None:
                    child = self._children[key] = metric.labels(label)
        return child

    # -- exposition ----------------------------------------------------------------------------------------------

    def render(self, *, queue_depth: int, generation: int, stuck: dict[str, int]) -> tuple[bytes, str]:
        """The text exposition (and its content type), with the counted results and the gauges brought up to date
        first."""
        self.flush()
        self.queue_depth.set(queue_depth)
        self.generation.set(generation)
        for model in self._stuck_seen | set(stuck):
            self.stuck_calls.labels(model).set(stuck.get(model, 0))
        self._stuck_seen |= set(stuck)
        if self.multiprocess:
            from prometheus_client import multiprocess

            combined = CollectorRegistry()
            multiprocess.MultiProcessCollector(combined)
            combined.register(self.preflight)
            return generate_latest(combined), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _PreflightGauge(Collector):
    """``mlsm_model_preflight_failing_inputs``: per live model, the generated inputs its preflight failed on."""

    def __init__(self) -> None:
        self.failing: dict[str, int] = {}  # replaced whole on every swap, so a scrape sees one set

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "mlsm_model_preflight_failing_inputs",
            "Generated inputs the live model failed on in its preflight (0: passed), by model (name@version)",
            labels=["model"],
        )
        for model, count in self.failing.items():
            family.add_metric([model], count)
        yield family
