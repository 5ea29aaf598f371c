"""Prometheus metrics of the worker, in a registry of their own (one per worker, so tests can run several)."""

from __future__ import annotations

import time
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _package_version

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)


def add_standard_collectors(registry: CollectorRegistry, component: str) -> Gauge:
    """What every AMI process exports besides its own metrics: `ami_build_info{version, component} 1` and
    the process_* and python_info metrics of prometheus_client (CPU seconds, memory, open fds, start time)."""
    try:
        version = _package_version("ami-node")
    except PackageNotFoundError:  # a checkout that was never installed
        version = "unknown"
    info = Gauge(
        "ami_build_info",
        "Constant 1, labelled with the running build",
        ["version", "component"],
        registry=registry,
    )
    info.labels(version=version, component=component).set(1)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return info


class WorkerMetrics:
    """The worker's counters and gauges; names are prefixed `ami_worker_`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.last_block = Gauge(
            "ami_worker_last_block", "Last finalized block written to the store", registry=r
        )
        self.blocks_behind = Gauge(
            "ami_worker_blocks_behind_head", "Finalized head minus checkpoint", registry=r
        )
        self.blocks = Counter("ami_worker_blocks", "Finalized blocks ingested", registry=r)
        self.events = Counter("ami_worker_events", "Contract events ingested", registry=r)
        self.listens = Counter("ami_worker_listens", "Listen events ingested", registry=r)
        self.events_per_s = Gauge(
            "ami_worker_events_per_second", "Events ingested per second (last 10 s)", registry=r
        )
        self.tracks_scored = Counter(
            "ami_worker_tracks_scored", "Tracks scored, by result", ["result"], registry=r
        )
        self.queue_depth = Gauge(
            "ami_worker_queue_depth", "Items waiting in a pipeline queue", ["queue"], registry=r
        )
        self.payouts_pending = Gauge(
            "ami_worker_payouts_pending", "Payouts not yet seen paid on chain", registry=r
        )
        self.payouts_paid = Counter("ami_worker_payouts_paid", "Paid events seen for our payouts", registry=r)
        self.submit_failures = Counter(
            "ami_worker_submit_failures", "Failed hand-offs to the submitter, by what", ["what"], registry=r
        )
        self.source_errors = Counter(
            "ami_worker_source_errors", "Chain or IPFS outages waited out", ["source"], registry=r
        )
        self.epochs_settled = Counter("ami_worker_epochs_settled", "Epochs settled", registry=r)
        self.tracks_rejected = Counter(
            "ami_worker_tracks_rejected", "Tracks rejected, by reason", ["reason"], registry=r
        )
        self.tracks_retried = Counter(
            "ami_worker_tracks_retried",
            "Track attempts put back in the retry lane, by reason",
            ["reason"],
            registry=r,
        )
        self.scorer_restarts = Counter(
            "ami_worker_scorer_restarts", "Scoring processes replaced (died, killed on timeout)", registry=r
        )
        self.submissions_failed = Gauge(
            "ami_worker_submissions_failed",
            "Outbox rows that reverted or failed on chain, by what (see `ami status`, `ami requeue`)",
            ["what"],
            registry=r,
        )
        # Latency histograms (Prometheus conventions: base unit seconds, `_seconds` suffix); buckets span a
        # fast cached fetch up to the scorer's wall-clock limit.
        buckets = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
        self.fetch_seconds = Histogram(
            "ami_worker_fetch_seconds",
            "Time to fetch and verify a track's audio from IPFS, successful fetches only",
            buckets=buckets,
            registry=r,
        )
        self.score_seconds = Histogram(
            "ami_worker_score_seconds",
            "Time to score one track in the scoring process, by result",
            ["result"],
            buckets=buckets,
            registry=r,
        )
        add_standard_collectors(r, "worker")
        self._window: list[tuple[float, int]] = []

    def observe_events(self, n: int) -> None:
        """Count ingested events and keep a 10-second sliding rate for the dashboard and the gauge."""
        now = time.monotonic()
        self.events.inc(n)
        self._window.append((now, n))
        while self._window and now - self._window[0][0] > 10.0:
            self._window.pop(0)
        span = max(now - self._window[0][0], 1.0) if self._window else 1.0
        self.events_per_s.set(sum(k for _, k in self._window) / span)

    def render(self) -> bytes:
        return generate_latest(self.registry)
