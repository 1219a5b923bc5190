"""The summary of a batch: accuracy, pass@k, tokens, tool calls, latency, failures by cause."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable

from pydantic import BaseModel
from rich.table import Table

from workflows.results import SampleResult


class Summary(BaseModel):
    problems: int
    samples: int
    correct: int
    accuracy: float  # correct samples / samples
    pass_at: dict[int, float]  # k -> unbiased pass@k, averaged over problems
    mean_thinking_tokens: float
    mean_answer_tokens: float
    tool_calls_per_problem: float  # per sample, averaged: one attempt at one problem
    latency_p50_ms: float
    latency_p95_ms: float
    failures: dict[str, int]  # cause -> samples


def pass_at_k(n: int, c: int, k: int) -> float:
    """Chen et al. (2021): 1 - C(n-c, k) / C(n, k), the chance that k of n samples include a
    correct one; exact for integers, unlike the naive (c/n) estimate for k > 1."""
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def summarize(results: Iterable[SampleResult]) -> Summary:
    rows = list(results)
    by_problem: dict[str, list[SampleResult]] = defaultdict(list)
    for row in rows:
        by_problem[row.problem_id].append(row)
    least = min((len(samples) for samples in by_problem.values()), default=0)
    ks = sorted({k for k in (1, 2, 4, 8, 16, least) if 1 <= k <= least})
    pass_at = {
        k: sum(
            pass_at_k(len(s), sum(r.correct for r in s), k) for s in by_problem.values()
        ) / len(by_problem)
        for k in ks
    }  # fmt: skip
    count = len(rows) or 1
    latencies = [row.latency_ms for row in rows]
    return Summary(
        problems=len(by_problem),
        samples=len(rows),
        correct=sum(row.correct for row in rows),
        accuracy=sum(row.correct for row in rows) / count,
        pass_at=pass_at,
        mean_thinking_tokens=sum(row.thinking_tokens for row in rows) / count,
        mean_answer_tokens=sum(row.answer_tokens for row in rows) / count,
        tool_calls_per_problem=sum(row.tool_calls for row in rows) / count,
        latency_p50_ms=percentile(latencies, 50),
        latency_p95_ms=percentile(latencies, 95),
        failures=dict(Counter(row.cause for row in rows if row.cause is not None)),
    )


def table(summary: Summary, title: str = "batch") -> Table:
    view = Table(title=title, show_header=False)
    view.add_column("measure", style="bold")
    view.add_column("value", justify="right")
    view.add_row("problems / samples", f"{summary.problems} / {summary.samples}")
    view.add_row("accuracy", f"{summary.accuracy:.1%} ({summary.correct})")
    for k, value in summary.pass_at.items():
        view.add_row(f"pass@{k}", f"{value:.1%}")
    view.add_row("thinking tokens (mean)", f"{summary.mean_thinking_tokens:.0f}")
    view.add_row("answer tokens (mean)", f"{summary.mean_answer_tokens:.0f}")
    view.add_row("tool calls per problem", f"{summary.tool_calls_per_problem:.2f}")
    view.add_row("latency p50 / p95", f"{summary.latency_p50_ms / 1000:.2f} s / "
                 f"{summary.latency_p95_ms / 1000:.2f} s")  # fmt: skip
    for cause, samples in sorted(summary.failures.items()):
        view.add_row(f"failed: {cause}", str(samples))
    return view
