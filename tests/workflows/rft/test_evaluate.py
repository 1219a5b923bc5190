"""`rft eval`'s figures: spontaneous tool use, tool errors, accuracy, over finished runs."""

from __future__ import annotations

from tests.workflows.rft.helpers import hinted, seg
from workflows.rft.evaluate import evaluate


def test_rates_count_finished_runs_and_hinted_calls_are_not_spontaneous() -> None:
    rows = [
        hinted(problem="a", hints=0),  # spontaneous, correct
        hinted(problem="b", hints=0, tool_calls=2, tool_errors=1, correct=False, cause="wrong"),
        hinted(problem="c"),  # hinted: its tool call is not spontaneous
        hinted(problem="d", tool_calls=0, hints=0, correct=False, cause="wrong"),
        hinted(problem="e", correct=False, cause="run_error", status="error"),
    ]
    report = evaluate(rows)
    assert (report.runs, report.failed_runs) == (4, 1)
    assert report.tool_use_rate == 2 / 4 and report.accuracy == 2 / 4
    assert report.tool_error_rate == 1 / 4  # failed rounds / all rounds (1 + 2 + 1 + 0)
    assert report.hints == 1  # c's; e's is not counted: it did not finish


def test_code_the_budget_cut_before_its_fence_counts_as_written_not_run() -> None:
    cut = [seg("code", "```python\nprint(sum(range(10"), seg("forced", "\n```\n\nConsidering ...")]
    rows = [
        hinted(problem="a", hints=0),  # ran its code
        hinted(problem="b", hints=0, tool_calls=0, segments=cut, correct=False, cause="wrong"),
        hinted(problem="c", hints=0, tool_calls=0, segments=[seg("model", "It is 45.")]),
    ]
    report = evaluate(rows)
    assert report.tool_use_rate == 1 / 3
    assert report.cut_code_rate == 1 / 3  # b wrote code; c wrote none
