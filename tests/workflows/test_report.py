"""The summary: pass@k's unbiased estimator, accuracy, percentiles, failures by cause."""

from __future__ import annotations

import math

import pytest
from rich.console import Console

from workflows.report import pass_at_k, percentile, summarize, table
from workflows.results import SampleResult


def result(problem: str, sample: int, correct: bool, **extra: object) -> SampleResult:
    return SampleResult(
        dataset="d",
        problem_id=problem,
        sample=sample,
        kind="math",
        status="ok",
        correct=correct,
        cause=None if correct else "wrong",
        **extra,
    )


def test_pass_at_k_matches_the_closed_form() -> None:
    assert pass_at_k(4, 0, 1) == 0.0
    assert pass_at_k(4, 4, 4) == 1.0
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert pass_at_k(4, 1, 2) == pytest.approx(1 - math.comb(3, 2) / math.comb(4, 2))  # 0.5
    assert pass_at_k(5, 2, 3) == pytest.approx(0.9)  # only 1 of the 10 triples misses both
    assert pass_at_k(5, 3, 3) == 1.0  # 2 wrong: any 3 of 5 include a correct one


def test_summary_of_samples() -> None:
    rows = [
        result("a", 0, True, thinking_tokens=10, answer_tokens=2, tool_calls=1, latency_ms=100),
        result("a", 1, False, thinking_tokens=30, answer_tokens=4, tool_calls=3, latency_ms=300),
        result("b", 0, False, latency_ms=200),
        result("b", 1, False, latency_ms=400),
    ]
    rows[3] = rows[3].model_copy(update={"cause": "run_error"})
    summary = summarize(rows)
    assert (summary.problems, summary.samples, summary.correct) == (2, 4, 1)
    assert summary.accuracy == 0.25
    assert summary.pass_at == {1: pytest.approx(0.25), 2: pytest.approx(0.5)}
    assert summary.mean_thinking_tokens == 10 and summary.mean_answer_tokens == 1.5
    assert summary.tool_calls_per_problem == 1.0
    assert (summary.latency_p50_ms, summary.latency_p95_ms) == (200, 400)
    assert summary.failures == {"wrong": 2, "run_error": 1}
    console = Console(record=True, width=80)
    console.print(table(summary))
    assert "pass@2" in console.export_text()


def test_empty_summary_and_percentile() -> None:
    assert summarize([]).samples == 0
    assert percentile([], 50) == 0.0
    assert percentile([5.0, 1.0, 3.0], 50) == 3.0
