"""`rft eval`: what a model does on its own, with no hints at all, graded by the judge."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel
from rich.table import Table

from agent.settings import RunOptions
from workflows.report import Summary, summarize
from workflows.rft.trajectory import Trajectory


def without_hints(options: RunOptions) -> RunOptions:
    """The options with every Hint-infer trigger off: tool calls are then spontaneous."""
    return options.model_copy(
        update={
            "min_tool_calls": 0,
            "hint_rounds": 0,
            "hint_word_probability": 0.0,
            "hint_at_start": False,
        }
    )


class EvalReport(BaseModel):
    model: str
    runs: int  # runs that finished; the rates below are over these
    failed_runs: int  # the model server or sandbox failed: rerun the eval to retry them
    tool_use_rate: float  # runs with at least one tool call and no hint
    # runs that wrote code but ran none: a block open at EOS is run, so a budget ended it unclosed
    cut_code_rate: float
    tool_error_rate: float  # failed tool rounds / tool rounds
    accuracy: float
    mean_tokens: float  # completion tokens per run
    tool_calls_per_run: float
    hints: int  # should be 0: a hint makes a tool call not spontaneous
    judge: Summary


def evaluate(trajectories: Iterable[Trajectory]) -> EvalReport:
    every = list(trajectories)
    rows = [row for row in every if row.cause != "run_error"]
    count = len(rows) or 1
    calls = sum(row.tool_calls for row in rows)
    return EvalReport(
        model=rows[0].model if rows else "",
        runs=len(rows),
        failed_runs=len(every) - len(rows),
        tool_use_rate=sum(1 for row in rows if row.tool_calls > 0 and row.hints == 0) / count,
        cut_code_rate=sum(1 for row in rows if row.tool_calls == 0 and row.count("code")) / count,
        tool_error_rate=sum(row.tool_errors for row in rows) / (calls or 1),
        accuracy=sum(row.correct for row in rows) / count,
        mean_tokens=sum(row.completion_tokens for row in rows) / count,
        tool_calls_per_run=calls / count,
        hints=sum(row.hints for row in rows),
        judge=summarize(rows),
    )


MEASURES = (
    ("spontaneous tool use", "tool_use_rate", "{:.1%}"),
    ("code written, never run (cut)", "cut_code_rate", "{:.1%}"),
    ("tool-error rate", "tool_error_rate", "{:.1%}"),
    ("accuracy", "accuracy", "{:.1%}"),
    ("mean tokens", "mean_tokens", "{:.0f}"),
    ("tool calls per run", "tool_calls_per_run", "{:.2f}"),
    ("runs (finished)", "runs", "{}"),
    ("runs failed (retried on rerun)", "failed_runs", "{}"),
)


def compare(reports: dict[str, EvalReport]) -> Table:
    """One column per report (before, after ...), one row per measure."""
    view = Table(title="rft eval (no hints)")
    view.add_column("measure", style="bold")
    for name in reports:
        view.add_column(name, justify="right")
    for label, field, form in MEASURES:
        view.add_row(label, *(form.format(getattr(r, field)) for r in reports.values()))
    return view
