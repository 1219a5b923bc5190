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


def test_g_pass_at_k_matches_the_hypergeometric_definition() -> None:
    from workflows.report import g_pass_at_k

    # n=4 samples, c=2 right, k=2: all k right needs both drawn right: C(2,2)/C(4,2) = 1/6
    assert g_pass_at_k(4, 2, 2, 1.0) == pytest.approx(1 / 6)
    # at tau 0.5 one right of two suffices: that is pass@2
    assert g_pass_at_k(4, 2, 2, 0.5) == pytest.approx(pass_at_k(4, 2, 2))
    assert g_pass_at_k(4, 4, 4, 1.0) == 1.0 and g_pass_at_k(4, 0, 1, 0.5) == 0.0


def test_majority_average_and_the_tool_half() -> None:
    rows = [
        result("p", 0, True, answer="4", tool_calls=2, hint_calls=1, sandbox_ms=[5.0, 7.0]),
        result("p", 1, True, answer="4", tool_errors=1, tool_calls=1, sandbox_ms=[9.0]),
        result("p", 2, False, answer="5", budget_exhausted=True),
        result("q", 0, False, answer="1"),
        result("q", 1, False, answer="1"),
        result("q", 2, True, answer="2", tool_calls=1, sandbox_ms=[100.0]),
    ]
    summary = summarize(rows)
    assert summary.maj_at[3] == pytest.approx(0.5)  # p's majority 4 is right, q's 1 is wrong
    assert summary.avg_at[3] == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert summary.g_pass_at["3@1"] == 0.0 and summary.g_pass_at["3@0.5"] == pytest.approx(0.5)
    assert (summary.spontaneous_calls, summary.hint_calls) == (3, 1)
    assert summary.tool_call_rate == pytest.approx(3 / 6)
    assert summary.tool_error_rate == pytest.approx(1 / 4)
    assert summary.budget_exhausted == 1
    assert (summary.sandbox_p50_ms, summary.sandbox_p99_ms) == (7.0, 100.0)
    assert list(summary.groups) == ["d / math"]
    Console(width=200).print(table(summary))
