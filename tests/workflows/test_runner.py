"""`batch run` in-process: graded results, failures as results, resume without duplicates."""

from __future__ import annotations

import json
from pathlib import Path

from agent.service import Agent
from agent.settings import RunOptions
from workflows.datasets import Problem, load_jsonl
from workflows.grading import Grader
from workflows.report import summarize
from workflows.results import read_results
from workflows.runner import run_batch

OPTIONS = RunOptions(timeout=60, thinking_budget=64, answer_budget=32)


def dataset(tmp_path: Path) -> list[Problem]:
    rows = [
        {"id": "r", "problem": "RIGHT: what is 2+2?", "answer": "4"},
        {"id": "w", "problem": "WRONG: what is 2+2?", "answer": "4"},
        {"id": "c", "problem": "CRASH: what is 2+2?", "answer": "4"},
        "{broken",
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    data = load_jsonl(path)
    assert [b.line for b in data.bad_rows] == [4]
    return data.problems


async def test_right_wrong_and_crashing_runs(agent: Agent, grader: Grader, tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    seen: list[str] = []
    outcome = await run_batch(
        agent, grader, dataset(tmp_path), out, OPTIONS, samples=2, concurrency=3,
        on_result=lambda r: seen.append(r.problem_id),
    )  # fmt: skip
    assert (outcome.planned, outcome.skipped, outcome.ran) == (6, 0, 6)
    assert sorted(seen) == ["c", "c", "r", "r", "w", "w"]
    results = read_results(out)
    assert {k: (r.correct, r.cause) for k, r in results.items()} == {
        ("r", 0): (True, None),
        ("r", 1): (True, None),
        ("w", 0): (False, "wrong"),
        ("w", 1): (False, "wrong"),
        ("c", 0): (False, "run_error"),
        ("c", 1): (False, "run_error"),
    }
    assert results["r", 0].answer == "4" and results["r", 0].status == "ok"
    assert results["c", 0].status == "error" and results["c", 0].detail
    summary = summarize(results.values())
    assert summary.pass_at[1] == summary.pass_at[2] == 1 / 3
    assert summary.failures == {"wrong": 2, "run_error": 2}


async def test_resume_skips_done_samples_and_retries_failed_runs(
    agent: Agent, grader: Grader, tmp_path: Path
) -> None:
    problems = dataset(tmp_path)
    out = tmp_path / "results.jsonl"
    first = await run_batch(agent, grader, problems[:1], out, OPTIONS, samples=2)
    assert first.ran == 2
    again = await run_batch(agent, grader, problems, out, OPTIONS, samples=2)
    assert (again.skipped, again.ran) == (2, 4)  # r done; w and c new
    third = await run_batch(agent, grader, problems, out, OPTIONS, samples=2)
    assert (third.skipped, third.ran) == (4, 2)  # only the crashed runs are retried
    lines = out.read_text().splitlines()
    assert len(lines) == 8  # 6 + the 2 retries, which supersede the crashed lines
    assert len(read_results(out)) == 6


async def test_code_problems_are_graded_in_the_sandbox(
    agent: Agent, grader: Grader, tmp_path: Path
) -> None:
    problem = Problem(
        dataset="code", id="add", kind="code", question="Write def add(a, b).", prompt="",
        test="def check(f):\n    assert f(2, 3) == 5\n", entry_point="add",
    )  # fmt: skip
    wrong = problem.model_copy(
        update={"id": "bad", "test": "def check(f):\n    assert f(1, 1) == 3\n"}
    )
    out = tmp_path / "code.jsonl"
    await run_batch(agent, grader, [problem, wrong], out, OPTIONS)
    results = read_results(out)
    assert results["add", 0].correct, results["add", 0].detail
    answer = results["add", 0].answer
    assert answer is not None and answer.strip() == "def add(a, b):\n    return a + b"
    assert (results["bad", 0].correct, results["bad", 0].cause) == (False, "wrong")


def test_tool_use_tells_hint_triggered_from_spontaneous_calls() -> None:
    from agent.events import BudgetExhausted, Code, Execution, Hint
    from workflows.runner import ToolUse

    tools = ToolUse()
    for event in [
        Code(index=0, code="1"),  # spontaneous
        Execution(index=0, status="ok", output="1", duration_ms=3.0),
        Hint(text="Wait, maybe using python here is a good idea.\n```python\n", reason="eos"),
        Code(index=1, code="2"),  # right after the hint
        Execution(index=1, status="error", output="boom", duration_ms=4.0),
        BudgetExhausted(budget=10, used=11),
    ]:
        tools.see(event)
    assert tools.model_dump() == {
        "hint_calls": 1, "tool_errors": 1, "sandbox_ms": [3.0, 4.0], "budget_exhausted": True,
    }  # fmt: skip
