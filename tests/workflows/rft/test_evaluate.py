"""`rft eval`'s figures: spontaneous tool use, tool errors, accuracy, over finished runs."""

from __future__ import annotations

from tests.workflows.rft.helpers import hinted
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
