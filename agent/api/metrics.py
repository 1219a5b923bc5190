"""Prometheus metrics of the API: runs, tool calls, tokens, latencies, the sandbox pool."""

from __future__ import annotations

import functools
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from agent.events import Event, RunFinished


class Metrics:
    """One registry per app, so tests can build several apps in one process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.runs = Counter("startbox_runs", "Finished runs.", ["status"], registry=self.registry)
        self.tool_calls = Counter(
            "startbox_tool_calls", "Code executions.", ["status"], registry=self.registry
        )
        self.tokens = Counter(
            "startbox_tokens", "Generated tokens.", ["phase"], registry=self.registry
        )
        self.run_seconds = Histogram(
            "startbox_run_seconds",
            "Wall time of a run.",
            buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800),
            registry=self.registry,
        )
        self.active = Gauge("startbox_runs_active", "Runs in progress.", registry=self.registry)
        self.pool = Gauge(
            "startbox_sandbox_containers", "Sandbox pool.", ["state"], registry=self.registry
        )

    def bind_pool(self, size: Callable[[], dict[str, int]]) -> None:
        """Read the pool's counts at each scrape."""
        for state in ("ready", "starting", "in_use"):
            self.pool.labels(state).set_function(functools.partial(_count, size, state))

    def observe(self, event: Event) -> None:
        if event.type == "execution":
            self.tool_calls.labels(event.status).inc()
        elif isinstance(event, RunFinished):
            self.runs.labels(event.status).inc()
            self.tokens.labels("thinking").inc(event.usage.thinking_tokens)
            self.tokens.labels("answer").inc(event.usage.answer_tokens)
            self.run_seconds.observe(event.timings_ms.get("total", 0.0) / 1000)


def _count(size: Callable[[], dict[str, int]], state: str) -> float:
    return size()[state]
