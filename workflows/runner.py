"""`batch run`: every problem x sample through one in-process Agent, bounded concurrency.

Resumable: what the results file already holds is skipped, except runs that failed (model
down, timeout), which are retried; the newer line then supersedes the old one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, Field

from agent.events import BudgetExhausted, Code, Execution, Hint, RunFinished
from agent.service import Agent, QuestionError
from agent.settings import RunOptions
from workflows.datasets import Problem
from workflows.grading import Grader
from workflows.results import SampleResult, append_result, prepare, read_results


class ToolUse(BaseModel):
    """The tool half of a run, from its events: a code block that continues a hint is
    hint-triggered, any other is spontaneous."""

    hint_calls: int = 0
    tool_errors: int = 0
    sandbox_ms: list[float] = []
    budget_exhausted: bool = False
    armed: bool = Field(False, exclude=True)  # a hint was inserted and no code followed yet

    def see(self, event: object) -> None:
        if isinstance(event, Hint):
            self.armed = True
        elif isinstance(event, Code):
            self.hint_calls += self.armed
            self.armed = False
        elif isinstance(event, Execution):
            self.tool_errors += event.status != "ok"
            self.sandbox_ms.append(event.duration_ms)
        elif isinstance(event, BudgetExhausted):
            self.budget_exhausted = True


class BatchOutcome(BaseModel):
    planned: int  # problem x sample pairs in the dataset
    skipped: int  # already in the results file
    ran: int


async def solve_one(
    agent: Agent,
    grader: Grader,
    problem: Problem,
    sample: int,
    options: RunOptions,
    owner: str = "",
) -> SampleResult:
    """One sample of one problem, solved and graded; failures become results, not raises.
    An `owner` (a tenant) lets its runs reuse their own recycled sandbox containers."""
    seed = None if options.seed is None else options.seed + sample
    options = options.model_copy(update={"kind": problem.kind, "seed": seed})
    base = SampleResult(
        dataset=problem.dataset,
        problem_id=problem.id,
        sample=sample,
        kind=problem.kind,
        status="error",
        reference=problem.reference,
        layout=problem.layout,
    )
    finished: RunFinished | None = None
    error = ""
    tools = ToolUse()
    try:
        async for event in agent.solve(problem.question, options, owner=owner):
            tools.see(event)
            if event.type == "error":
                error = event.message
            elif isinstance(event, RunFinished):
                finished = event
    except QuestionError as exc:
        return base.model_copy(update={"cause": "run_error", "detail": str(exc)})
    assert finished is not None  # solve always ends with run_finished
    base = base.model_copy(
        update={
            "status": finished.status,
            "answer": finished.answer,
            "thinking_tokens": finished.usage.thinking_tokens,
            "answer_tokens": finished.usage.answer_tokens,
            "tool_calls": finished.usage.tool_calls,
            **tools.model_dump(),
            "latency_ms": finished.timings_ms.get("total", 0.0),
            "run_id": finished.run_id,
        }
    )
    if finished.status != "ok":
        return base.model_copy(update={"cause": "run_error", "detail": error})
    grade = await grader.grade(problem, finished.answer)
    return base.model_copy(update=grade.model_dump())


def pending(
    problems: list[Problem], samples: int, out: Path
) -> tuple[list[tuple[Problem, int]], int]:
    """The (problem, sample) pairs still to run, and how many are done already."""
    done = {key for key, r in read_results(out).items() if r.cause != "run_error"}
    todo = [(p, s) for p in problems for s in range(samples) if (p.id, s) not in done]
    return todo, len(problems) * samples - len(todo)


Result = TypeVar("Result", bound=SampleResult)
Solver = Callable[[Agent, Grader, Problem, int, RunOptions], Awaitable[Result]]


async def run_batch(
    agent: Agent,
    grader: Grader,
    problems: list[Problem],
    out: Path,
    options: RunOptions,
    samples: int = 1,
    concurrency: int = 4,
    on_result: Callable[[Result], None] | None = None,
    solve: Solver[Result] = solve_one,  # type: ignore[assignment]  # the default Result
) -> BatchOutcome:
    """Every (problem, sample) not yet in `out`, solved by `solve` and appended as it ends
    (RFT's collect passes a solver that keeps the trajectory too)."""
    prepare(out)
    todo, skipped = pending(problems, samples, out)
    gate = asyncio.Semaphore(concurrency)

    async def one(problem: Problem, sample: int) -> None:
        async with gate:
            result = await solve(agent, grader, problem, sample, options)
        append_result(out, result)  # one writer: the event loop, one line at a time
        if on_result is not None:
            on_result(result)

    await asyncio.gather(*(one(p, s) for p, s in todo))
    return BatchOutcome(planned=len(problems) * samples, skipped=skipped, ran=len(todo))
