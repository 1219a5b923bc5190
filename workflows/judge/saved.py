"""Grading saved model outputs (`startbox grade`): dataset rows plus the model's `response`
(or a `responses` list, one per sample), graded like a batch but without a model."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.kinds import kind_of
from workflows.datasets import Dataset, Problem
from workflows.grading import Grader
from workflows.results import SampleResult

THINK_END = "</think>"


def responses_of(row: dict[str, Any]) -> list[str] | None:
    if isinstance(row.get("responses"), list):
        return [str(r) for r in row["responses"]]
    if isinstance(row.get("response"), str):
        return [row["response"]]
    return None


def extract(problem: Problem, response: str) -> tuple[str | None, bool]:
    """The kind's reader on the answer section (after the last </think>) and the whole text."""
    section = response.rsplit(THINK_END, 1)[1] if THINK_END in response else response
    found = kind_of(problem.kind).extract(section, response)
    return found.answer, found.marked


async def grade_rows(
    data: Dataset,
    grader: Grader,
    out: Path,
    concurrency: int = 4,
    on_row: Callable[[], None] | None = None,
) -> list[SampleResult]:
    """Each problem's responses graded; output rows are the input row plus extracted, correct,
    cause (and detail, kind, layout), written in input order to `out`."""
    gate = asyncio.Semaphore(concurrency)
    results: list[SampleResult] = []

    async def one(problem: Problem) -> dict[str, Any]:
        row = dict(data.rows[problem.row - 1] or {})
        graded: list[dict[str, Any]] = []
        for sample, response in enumerate(responses_of(row) or []):
            answer, marked = extract(problem, response)
            async with gate:
                grade = await grader.grade(problem, answer)
            graded.append({"extracted": answer, "marked": marked, **grade.model_dump()})
            results.append(
                SampleResult(
                    dataset=problem.dataset,
                    problem_id=problem.id,
                    sample=sample,
                    kind=problem.kind,
                    status="ok",
                    answer=answer,
                    reference=problem.reference,
                    layout=problem.layout,
                    **grade.model_dump(),
                )
            )
        if on_row is not None:
            on_row()
        first = graded[0] if graded else {"extracted": None, "correct": False,
                                         "cause": "no_answer", "detail": "no response"}  # fmt: skip
        extra = {"samples": graded} if len(graded) > 1 else {}
        return {**row, "id": problem.id, "kind": problem.kind, "layout": problem.layout,
                "extracted": first["extracted"], "correct": first["correct"],
                "cause": first["cause"], "detail": first.get("detail", ""), **extra}  # fmt: skip

    rows = await asyncio.gather(*(one(p) for p in data.problems))
    with out.open("w", encoding="utf-8") as sink:
        for row in rows:
            sink.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    return results
