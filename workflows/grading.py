"""Grading: one grader per problem kind, looked up by the kind's name (agent/kinds.py).

math-verify bounds its parsing with SIGALRM, which only works in a process's main thread, so
math runs in a small process pool (each worker calls it from its main thread) and the caller
adds its own deadline on top. Programs are judged by workflows.judge.code, outside the
sandbox wherever the test form allows. Whatever goes wrong while grading one problem is that
problem's `grader_error`, never an exception that ends a batch.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from types import TracebackType
from typing import Literal

from pydantic import BaseModel

from sandbox.pool import SandboxPool
from workflows.datasets import Problem
from workflows.judge.code import Trusted, grade_program
from workflows.judge.equivalence import equivalent

log = logging.getLogger(__name__)

Cause = Literal[
    "wrong",  # graded and not equal / tests failed
    "no_answer",  # the run ended without a \boxed{} or a final program
    "run_error",  # the agent run failed (model, sandbox, timeout)
    "test_timeout",  # the program's tests ran out of time
    "grader_error",  # the grader could not decide (math-verify timed out, sandbox down)
]


class Grade(BaseModel):
    correct: bool
    cause: Cause | None = None  # why not correct
    detail: str = ""


def _verify(answer: str, reference: str, timeout: int) -> bool:
    """In a worker process's main thread, where math-verify's SIGALRM timeouts work."""
    return equivalent(reference, answer, timeout)


class Grader:
    """Grades answers; open it with `async with` (it owns a process pool for math-verify)."""

    def __init__(
        self,
        pool: SandboxPool | None = None,
        math_timeout: float = 10.0,
        code_timeout: float = 10.0,
    ) -> None:
        self.sandbox = pool
        self.math_timeout = math_timeout
        self.code_timeout = code_timeout
        self._processes: ProcessPoolExecutor | None = None
        self._trusted: Trusted | None = None  # the harness session, opened at the first program

    async def __aenter__(self) -> Grader:
        # spawn: forking a process that runs asyncio and docker threads is unsafe
        self._processes = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._processes is not None:
            self._processes.shutdown(wait=False, cancel_futures=True)
        if self._trusted is not None:
            await self._trusted.close()

    async def grade(self, problem: Problem, answer: str | None) -> Grade:
        """The grade of one answer; never raises for a problem or answer it cannot handle."""
        if answer is None or not answer.strip():
            return Grade(correct=False, cause="no_answer")
        grader = GRADERS.get(problem.kind)
        if grader is None:
            return Grade(
                correct=False, cause="grader_error", detail=f"no grader for {problem.kind!r}"
            )
        try:
            return await grader(self, problem, answer)
        except Exception as exc:
            log.exception("grading %s failed", problem.id)
            return Grade(correct=False, cause="grader_error", detail=f"{type(exc).__name__}: {exc}")

    async def grade_math(self, problem: Problem, answer: str) -> Grade:
        if self._processes is None:
            raise RuntimeError("open the Grader with `async with Grader(...)` first")
        reference = problem.reference or ""
        inner = max(1, int(self.math_timeout / 2))  # math-verify's own, per parse/verify step
        future = asyncio.get_running_loop().run_in_executor(
            self._processes, _verify, answer, reference, inner
        )
        try:
            async with asyncio.timeout(self.math_timeout + 30):  # + the first spawn's imports
                same = await future
        except TimeoutError:
            return Grade(correct=False, cause="grader_error", detail="math-verify timed out")
        except BrokenProcessPool as exc:
            return Grade(correct=False, cause="grader_error", detail=f"math-verify died: {exc}")
        return Grade(correct=True) if same else Grade(correct=False, cause="wrong")

    async def grade_choice(self, problem: Problem, answer: str) -> Grade:
        """By letter: the reader already turned "(D)", "D) 10^-4 eV", \\boxed{D} into D."""
        letter = answer.strip().strip("()").upper()[:1]
        reference = (problem.reference or "").strip().upper()
        if letter == reference:
            return Grade(correct=True)
        return Grade(correct=False, cause="wrong", detail=f"chose {answer.strip()[:20]!r}")

    async def grade_code(self, problem: Problem, completion: str) -> Grade:
        if self.sandbox is None:
            return Grade(correct=False, cause="grader_error", detail="no sandbox pool to run code")
        if self._trusted is None:
            self._trusted = Trusted(self.sandbox)
        outcome = await grade_program(self._trusted, problem, completion, self.code_timeout)
        return Grade.model_validate(vars(outcome))


GRADERS: dict[str, Callable[[Grader, Problem, str], Awaitable[Grade]]] = {
    "math": Grader.grade_math,
    "choice": Grader.grade_choice,
    "code": Grader.grade_code,
}
