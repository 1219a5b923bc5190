"""The summary of a batch: accuracy, pass@k, maj@k, avg@k, G-Pass@k, tokens, the tool half of
the runs (tool-call rate, spontaneous vs hint-triggered calls, tool errors, sandbox time),
latency and failures by cause; overall and per dataset x kind."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable

from pydantic import BaseModel
from rich.table import Table

from workflows.results import SampleResult

TAUS = (0.5, 0.75, 1.0)


class Group(BaseModel):
    """The measures of one set of samples (a whole batch, or one dataset x kind)."""

    problems: int
    samples: int
    correct: int
    accuracy: float  # correct samples / samples
    pass_at: dict[int, float]  # k -> unbiased pass@k, averaged over problems
    maj_at: dict[int, float]  # k -> majority vote of the first k samples' answers is right
    avg_at: dict[int, float]  # k -> mean accuracy of the first k samples
    g_pass_at: dict[str, float]  # "k@tau" -> G-Pass@k at threshold tau
    mean_thinking_tokens: float
    mean_answer_tokens: float
    tool_calls_per_problem: float  # per sample, averaged: one attempt at one problem
    tool_call_rate: float  # samples that ran code at least once
    spontaneous_calls: int
    hint_calls: int
    tool_error_rate: float  # executions that did not end ok / executions
    no_answer: int  # samples with no extracted answer
    budget_exhausted: int  # samples whose thinking budget ran out
    sandbox_p50_ms: float
    sandbox_p99_ms: float
    latency_p50_ms: float
    latency_p95_ms: float
    failures: dict[str, int]  # cause -> samples


class Summary(Group):
    layouts: list[str] = []  # the dataset layouts the problems were read under
    groups: dict[str, Group] = {}  # "dataset / kind" -> its measures


def pass_at_k(n: int, c: int, k: int) -> float:
    """Chen et al. (2021): 1 - C(n-c, k) / C(n, k), the chance that k of n samples include a
    correct one; exact for integers, unlike the naive (c/n) estimate for k > 1."""
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def g_pass_at_k(n: int, c: int, k: int, tau: float) -> float:
    """G-Pass@k_tau (Liu et al. 2024, as lighteval/OpenCompass compute it): the chance that at
    least ceil(tau * k) of k samples drawn from the n are correct (hypergeometric)."""
    least = max(1, math.ceil(tau * k))
    return sum(math.comb(c, j) * math.comb(n - c, k - j) for j in range(least, min(c, k) + 1)) / (
        math.comb(n, k)
    )


def majority_correct(samples: list[SampleResult]) -> float:
    """1 when the most common extracted answer (ties: the earliest) was graded right."""
    answers = [(s.answer or "").strip() for s in samples if (s.answer or "").strip()]
    if not answers:
        return 0.0
    counts = Counter(answers)
    top = max(counts.values())
    winner = next(a for a in answers if counts[a] == top)
    return float(any(s.correct for s in samples if (s.answer or "").strip() == winner))


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def measure(rows: list[SampleResult]) -> Group:
    by_problem: dict[str, list[SampleResult]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: r.sample):
        by_problem[row.problem_id].append(row)
    least = min((len(samples) for samples in by_problem.values()), default=0)
    ks = sorted({k for k in (1, 2, 4, 8, 16, 32, 64, least) if 1 <= k <= least})
    problems = list(by_problem.values())

    def mean(values: Iterable[float]) -> float:
        return sum(values) / len(problems) if problems else 0.0

    counts = [(len(s), sum(r.correct for r in s)) for s in problems]
    count = len(rows) or 1
    executions = sum(len(row.sandbox_ms) for row in rows)
    sandbox = [ms for row in rows for ms in row.sandbox_ms]
    latencies = [row.latency_ms for row in rows]
    return Group(
        problems=len(problems),
        samples=len(rows),
        correct=sum(row.correct for row in rows),
        accuracy=sum(row.correct for row in rows) / count,
        pass_at={k: mean(pass_at_k(n, c, k) for n, c in counts) for k in ks},
        maj_at={k: mean(majority_correct(s[:k]) for s in problems) for k in ks},
        avg_at={k: mean(sum(r.correct for r in s[:k]) / k for s in problems) for k in ks},
        g_pass_at={
            f"{k}@{tau:g}": mean(g_pass_at_k(n, c, k, tau) for n, c in counts)
            for k in ks
            for tau in TAUS
        },
        mean_thinking_tokens=sum(row.thinking_tokens for row in rows) / count,
        mean_answer_tokens=sum(row.answer_tokens for row in rows) / count,
        tool_calls_per_problem=sum(row.tool_calls for row in rows) / count,
        tool_call_rate=sum(row.tool_calls > 0 for row in rows) / count,
        spontaneous_calls=sum(max(0, row.tool_calls - row.hint_calls) for row in rows),
        hint_calls=sum(row.hint_calls for row in rows),
        tool_error_rate=sum(row.tool_errors for row in rows) / (executions or 1),
        no_answer=sum(row.cause == "no_answer" for row in rows),
        budget_exhausted=sum(row.budget_exhausted for row in rows),
        sandbox_p50_ms=percentile(sandbox, 50),
        sandbox_p99_ms=percentile(sandbox, 99),
        latency_p50_ms=percentile(latencies, 50),
        latency_p95_ms=percentile(latencies, 95),
        failures=dict(Counter(row.cause for row in rows if row.cause is not None)),
    )


def summarize(results: Iterable[SampleResult]) -> Summary:
    rows = list(results)
    split: dict[str, list[SampleResult]] = defaultdict(list)
    for row in rows:
        split[f"{row.dataset} / {row.kind}"].append(row)
    return Summary(
        **measure(rows).model_dump(),
        layouts=sorted({row.layout for row in rows if row.layout}),
        groups={name: measure(group) for name, group in sorted(split.items())},
    )


def table(summary: Summary, title: str = "batch") -> Table:
    """Measures as rows; one column for the whole batch and one per dataset x kind when the
    batch holds more than one."""
    columns: list[tuple[str, Group]] = [("all", summary)]
    if len(summary.groups) > 1:
        columns += list(summary.groups.items())
    elif summary.groups:
        columns = [(next(iter(summary.groups)), summary)]
    view = Table(
        title=title + (f" (layout: {', '.join(summary.layouts)})" if summary.layouts else "")
    )
    view.add_column("measure", style="bold")
    for name, _ in columns:
        view.add_column(name, justify="right")

    def row(label: str, cell: object) -> None:
        view.add_row(label, *(cell(g) if callable(cell) else str(cell) for _, g in columns))

    row("problems / samples", lambda g: f"{g.problems} / {g.samples}")
    row("accuracy", lambda g: f"{g.accuracy:.1%} ({g.correct})")
    for k in summary.pass_at:
        row(f"pass@{k}", lambda g, k=k: _pct(g.pass_at.get(k)))
    for k in summary.maj_at:
        if k > 1:
            row(f"maj@{k}", lambda g, k=k: _pct(g.maj_at.get(k)))
            row(f"avg@{k}", lambda g, k=k: _pct(g.avg_at.get(k)))
    for key in summary.g_pass_at:
        if not key.startswith("1@"):
            row(f"G-Pass@{key.replace('@', ' τ=')}", lambda g, key=key: _pct(g.g_pass_at.get(key)))
    row("thinking / answer tokens (mean)",
        lambda g: f"{g.mean_thinking_tokens:.0f} / {g.mean_answer_tokens:.0f}")  # fmt: skip
    row("tool calls per problem", lambda g: f"{g.tool_calls_per_problem:.2f}")
    row("runs with a tool call", lambda g: _pct(g.tool_call_rate))
    row("calls spontaneous / after a hint", lambda g: f"{g.spontaneous_calls} / {g.hint_calls}")
    row("tool errors", lambda g: _pct(g.tool_error_rate))
    row("sandbox time p50 / p99", lambda g: f"{g.sandbox_p50_ms:.0f} / {g.sandbox_p99_ms:.0f} ms")
    row("no answer / budget exhausted", lambda g: f"{g.no_answer} / {g.budget_exhausted}")
    row("latency p50 / p95",
        lambda g: f"{g.latency_p50_ms / 1000:.2f} s / {g.latency_p95_ms / 1000:.2f} s")  # fmt: skip
    for cause in sorted(summary.failures):
        row(f"failed: {cause}", lambda g, cause=cause: str(g.failures.get(cause, 0)))
    return view


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"
