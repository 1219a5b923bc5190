"""Grading: math-verify in its process pool, HumanEval programs in the real Docker sandbox."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import pytest

from sandbox.pool import SandboxPool
from sandbox.settings import SandboxSettings
from workflows.datasets import Problem, load_humaneval
from workflows.grading import Grade, Grader


@pytest.fixture(scope="module")
async def grader() -> AsyncIterator[Grader]:
    async with SandboxPool(SandboxSettings(pool_size=1)) as pool, Grader(pool, code_timeout=5) as g:
        yield g


def math_problem(reference: str) -> Problem:
    return Problem(dataset="t", id="m", kind="math", question="?", reference=reference)


@pytest.mark.parametrize(
    ("answer", "reference", "correct"),
    [
        ("27", "27.0", True),
        ("19/12", "\\frac{19}{12}", True),
        ("\\dfrac{1}{2}", "0.5", True),
        ("205", "204", False),
        ("x", "31", False),
    ],
)
async def test_math_answers(grader: Grader, answer: str, reference: str, correct: bool) -> None:
    grade = await grader.grade(math_problem(reference), answer)
    assert grade.correct is correct
    assert grade.cause == (None if correct else "wrong")


async def test_math_grading_works_off_the_main_thread(grader: Grader) -> None:
    """SIGALRM-based math-verify would raise in a thread; the process pool makes it not matter."""

    def in_thread() -> bool:
        return asyncio.run(_grade_in_fresh_loop()).correct

    assert threading.current_thread() is threading.main_thread()
    assert await asyncio.to_thread(in_thread)


async def _grade_in_fresh_loop() -> Grade:
    async with Grader() as fresh:
        return await fresh.grade(math_problem("42"), "42")


async def test_no_answer(grader: Grader) -> None:
    grade = await grader.grade(math_problem("1"), None)
    assert (grade.correct, grade.cause) == (False, "no_answer")


async def test_humaneval_correct_and_wrong_completions(grader: Grader) -> None:
    problem = load_humaneval().problems[0]
    right = await grader.grade(problem, _canonical(problem))
    assert right.correct, right.detail
    wrong = await grader.grade(problem, "    return False\n")
    assert (wrong.correct, wrong.cause) == (False, "wrong")
    assert "AssertionError" in wrong.detail
    assert problem.prompt is not None  # HumanEval: the stub the completion continues
    full = problem.prompt + _canonical(problem)  # the agent's final block: the whole function
    assert (await grader.grade(problem, full)).correct


async def test_humaneval_hanging_completion_times_out(grader: Grader) -> None:
    problem = load_humaneval().problems[0]
    grade = await grader.grade(problem, "    while True:\n        pass\n")
    assert (grade.correct, grade.cause) == (False, "test_timeout")


def _canonical(problem: Problem) -> str:
    from workflows.datasets import humaneval_rows

    return next(r["canonical_solution"] for r in humaneval_rows() if r["task_id"] == problem.id)
