"""Prometheus metrics, in a registry of their own per app (no process-global state)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self, gauges: Callable[[], dict[str, float]]) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram
        from prometheus_client.core import GaugeMetricFamily

        self.registry = CollectorRegistry()
        self.requests = Histogram(
            "xmodal_request_seconds", "HTTP request latency by endpoint", ["endpoint", "method"],
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.responses = Counter(
            "xmodal_responses_total", "HTTP responses by endpoint and status", ["endpoint", "method", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.stages = Histogram(
            "xmodal_stage_seconds", "search pipeline stage latency", ["stage"],
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.errors = Counter(
            "xmodal_errors_total", "error responses by endpoint and error type", ["endpoint", "type"],
            registry=self.registry,
        )  # fmt: skip
        self.cache = Counter(
            "xmodal_cache_requests_total", "cache lookups", ["cache", "result"], registry=self.registry
        )

        class _Gauges:
            def collect(self) -> Iterator[Any]:
                for name, value in gauges().items():
                    g = GaugeMetricFamily(f"xmodal_{name}", name.replace("_", " "))
                    g.add_metric([], float(value))
                    yield g

        self.registry.register(_Gauges())  # type: ignore[arg-type]

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.stages.labels(name).observe(time.perf_counter() - started)

    def cache_lookup(self, cache: str, hit: bool) -> None:
        self.cache.labels(cache, "hit" if hit else "miss").inc()

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
