"""A `batch run --out` file under faults: a torn last line, a missing or impossible directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.service import Agent
from agent.settings import RunOptions
from workflows.datasets import Problem
from workflows.errors import ResultsError
from workflows.grading import Grader
from workflows.results import prepare, read_results
from workflows.runner import run_batch

OPTIONS = RunOptions(timeout=60, thinking_budget=64, answer_budget=32)
PROBLEMS = [
    Problem(dataset="t", id=ident, kind="math", question=f"{word}: what is 2+2?", reference="4")
    for ident, word in (("r", "RIGHT"), ("w", "WRONG"))
]


async def test_a_torn_last_line_is_cut_and_its_sample_run_again(
    agent: Agent, grader: Grader, tmp_path: Path
) -> None:
    problems = PROBLEMS
    out = tmp_path / "results.jsonl"
    await run_batch(agent, grader, problems, out, OPTIONS)
    lines = out.read_text().splitlines(keepends=True)
    torn = lines[-1][: len(lines[-1]) // 2]  # killed mid-write: half a line, no newline
    out.write_text(lines[0] + torn)
    lost = json.loads(lines[-1])["problem_id"]
    again = await run_batch(agent, grader, problems, out, OPTIONS)
    assert (again.skipped, again.ran) == (1, 1)
    results = read_results(out)
    assert sorted(p for p, _ in results) == ["r", "w"] and (lost, 0) in results
    assert all(json.loads(line) for line in out.read_text().splitlines())  # none glued


def test_out_into_a_missing_directory_is_created_and_an_impossible_one_refused(
    tmp_path: Path,
) -> None:
    assert prepare(tmp_path / "new" / "deeper" / "results.jsonl") == 0
    assert (tmp_path / "new" / "deeper").is_dir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(ResultsError, match="pick another --out"):
        prepare(tmp_path / "file" / "results.jsonl")
