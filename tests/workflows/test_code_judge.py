"""Code verdicts on the real Docker sandbox: right programs pass, forgeries and wrong ones fail,
every test form (HumanEval check, MBPP asserts, stdin/stdout, call tests) judged outside."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandbox.pool import SandboxPool
from sandbox.settings import SandboxSettings
from tests.workflows.forgeries import FORGERIES
from tests.workflows.layout_rows import LAYOUT_ROWS
from workflows.datasets import CallTest, Problem, StdioTest, humaneval_rows, load, load_humaneval
from workflows.grading import Grader
from workflows.judge.code import same, same_output


@pytest.fixture(scope="module")
async def grader() -> AsyncIterator[Grader]:
    settings = SandboxSettings(pool_size=2, max_sessions=6)
    async with SandboxPool(settings) as pool, Grader(pool, code_timeout=10) as opened:
        yield opened


def canonical(task: str) -> str:
    return next(r["canonical_solution"] for r in humaneval_rows() if r["task_id"] == task)


def humaneval(task: str) -> Problem:
    return next(p for p in load_humaneval().problems if p.id == task)


@pytest.mark.parametrize("name", sorted(FORGERIES))
async def test_forged_completions_grade_wrong(grader: Grader, name: str) -> None:
    grade = await grader.grade(humaneval("HumanEval/0"), FORGERIES[name])
    assert grade.correct is False, grade
    assert grade.cause in ("wrong", "test_timeout"), grade


@pytest.mark.parametrize("task", ["HumanEval/0", "HumanEval/32", "HumanEval/38", "HumanEval/50"])
async def test_canonical_humaneval_passes_including_dynamic_tests(
    grader: Grader, task: str
) -> None:
    """32 calls the candidate in a seeded loop, 38 and 50 on random strings: the harness asks
    for each call the test makes."""
    grade = await grader.grade(humaneval(task), canonical(task))
    assert grade.correct, grade.detail


async def test_humaneval_wrong_and_hanging(grader: Grader) -> None:
    problem = humaneval("HumanEval/0")
    wrong = await grader.grade(problem, "    return False\n")
    assert (wrong.correct, wrong.cause) == (False, "wrong")
    assert "AssertionError" in wrong.detail
    assert problem.prompt is not None  # HumanEval: the stub the completion continues
    assert (await grader.grade(problem, problem.prompt + canonical(problem.id))).correct
    hang = await grader.grade(problem, "    while True:\n        pass\n")
    assert (hang.correct, hang.cause) == (False, "test_timeout")


async def test_mbpp_asserts(grader: Grader, tmp_path: Path) -> None:
    path = tmp_path / "mbpp.jsonl"
    path.write_text(json.dumps(LAYOUT_ROWS["mbpp"][1][0]) + "\n", "utf-8")
    problem = load(str(path)).problems[0]
    right = "def remove_Occ(s, ch):\n    s = s.replace(ch, '', 1)\n    i = s.rfind(ch)\n" \
            "    return s if i < 0 else s[:i] + s[i + 1:]\n"  # fmt: skip
    assert (await grader.grade(problem, right)).correct
    assert not (await grader.grade(problem, "def remove_Occ(s, ch):\n    return s\n")).correct


async def test_stdin_stdout_and_call_layouts(grader: Grader, tmp_path: Path) -> None:
    path = tmp_path / "lcb.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in LAYOUT_ROWS["livecodebench"][1]))
    stdin_problem, functional = load(str(path)).problems
    summing = "n = int(input())\nprint(sum(map(int, input().split())))\n"
    assert (await grader.grade(stdin_problem, summing)).correct
    early_exit = "import sys\nn = int(input())\nprint(sum(map(int, input().split())))\nsys.exit()\n"
    assert (await grader.grade(stdin_problem, early_exit)).correct
    public_only = "print(6)\n"  # passes the public test, fails the private one
    assert not (await grader.grade(stdin_problem, public_only)).correct
    twice = "class Solution:\n    def twice(self, x: int) -> int:\n        return 2 * x\n"
    assert (await grader.grade(functional, twice)).correct
    as_text = "class Solution:\n    def twice(self, x):\n        return str(2 * x)\n"
    assert not (await grader.grade(functional, as_text)).correct


async def test_stdin_programs_run_as_fresh_processes_judged_outside(
    grader: Grader, tmp_path: Path
) -> None:
    """Each stdin test is a whole program run (the sandbox's run_program): its exit code and
    output are judged here; a crash, a failing exit code or a hang is never correct."""
    path = tmp_path / "lcb.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in LAYOUT_ROWS["livecodebench"][1]))
    problem = load(str(path)).problems[0]
    crash = "n = int(input())\nraise ValueError('no luck')\n"
    crashed = await grader.grade(problem, crash)
    assert (crashed.correct, crashed.cause) == (False, "wrong")
    assert "ValueError: no luck" in crashed.detail
    failing = "import sys\nn = int(input())\nprint(sum(map(int, input().split())))\nsys.exit(3)\n"
    assert (await grader.grade(problem, failing)).cause == "wrong"
    main_guard = (
        "def main():\n    input()\n    print(sum(map(int, input().split())))\n"
        "if __name__ == '__main__':\n    main()\n"
    )
    assert (await grader.grade(problem, main_guard)).correct
    hang = await grader.grade(problem, "while True:\n    pass\n")
    assert (hang.correct, hang.cause) == (False, "test_timeout")


async def test_humaneval_plus_extra_inputs_use_the_canonical_results(grader: Grader) -> None:
    base = humaneval("HumanEval/0")
    assert base.prompt is not None
    plus = base.model_copy(
        update={
            "calls": [CallTest(args=[[1.0, 1.05], 0.1]), CallTest(args=[[0.0, 5.0, 10.0], 4.9])],
            "reference_solution": base.prompt + canonical(base.id),
        }
    )
    assert (await grader.grade(plus, canonical(base.id))).correct
    # right on HumanEval's own tests, wrong on the extra input (strict instead of <):
    sloppy = canonical(base.id).replace("< threshold", "<= threshold")
    assert (await grader.grade(base, sloppy)).correct
    assert not (
        await grader.grade(
            plus.model_copy(update={"calls": plus.calls[:1]}), "    return numbers[0] > 5\n"
        )
    ).correct


async def test_rows_the_grader_cannot_handle_are_grader_errors(grader: Grader) -> None:
    no_tests = Problem(dataset="t", id="x", kind="code", question="?")
    grade = await grader.grade(no_tests, "print(1)")
    assert (grade.correct, grade.cause) == (False, "grader_error")
    stdio = Problem(dataset="t", id="y", kind="code", question="?",
                    stdio=[StdioTest(input="", output="1")])  # fmt: skip
    assert (await grader.grade(stdio, "print(1)")).correct


def test_comparison_by_type_and_value() -> None:
    assert same(2.0, 2, None, loose=False)
    assert not same(True, 1, None, loose=False)
    assert not same([1, 2], (1, 2), None, loose=False)
    assert same([1, 2], (1, 2), None, loose=True)
    assert same(0.1 + 0.2, 0.3, None, loose=False)
    assert not same(2.0, 2.000001, None, loose=False)
    assert same(2.0, 2.000001, 1e-5, loose=False)
    assert same_output("1 2.5\nyes\n", "1  2.5000001 yes")
    assert not same_output("1 2\n", "1 2 3\n")
    assert not same_output("YES", "NO")
