"""`startbox batch run|report` as a user runs them, against the scripted model and real Docker."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from model_host.scripted import ScriptedServer


async def startbox(server: ScriptedServer, *args: str) -> tuple[int, str, str]:
    env = {
        **os.environ,
        "STARTBOX_MODEL_BASE_URL": server.base_url,
        "STARTBOX_MODEL_PROFILE": "qwen3",
        "STARTBOX_MODEL_SERVED_NAME": "scripted",
        "STARTBOX_MODEL_RETRIES": "0",
        "STARTBOX_AGENT_PERSIST": "false",
        "STARTBOX_AGENT_ROUND_TOKENS": "64",
        "STARTBOX_SANDBOX_POOL_SIZE": "1",
        "COLUMNS": "200",
    }
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("startbox")), *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 180)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_batch_run_resumes_and_reports(scripted: ScriptedServer, tmp_path: Path) -> None:
    data = tmp_path / "set.jsonl"
    rows = [
        json.dumps({"key": "r", "text": "RIGHT: 2+2?", "gold": "4"}),
        "oops",
        json.dumps({"key": "w", "text": "WRONG: 2+2?", "gold": "4"}),
    ]
    data.write_text("\n".join(rows) + "\n")
    out = tmp_path / "results.jsonl"
    args = ["batch", "run", str(data), "--out", str(out), "--field", "question=text",
            "--field", "answer=gold", "--field", "id=key", "--samples", "2"]  # fmt: skip
    code, stdout, stderr = await startbox(scripted, *args, "--limit", "1")
    assert code == 0, stderr
    assert "skipped row 2" in stderr and "layout" in stderr
    assert "2 runs to do, 0 already" in stderr
    assert len(out.read_text().splitlines()) == 2
    code, stdout, stderr = await startbox(scripted, *args)
    assert code == 0, stderr
    assert "2 runs to do, 2 already" in stderr
    assert "pass@2" in stdout and "failed: wrong" in stdout
    assert len(out.read_text().splitlines()) == 4
    summary = json.loads(out.with_suffix(".summary.json").read_text())
    assert (summary["samples"], summary["accuracy"]) == (4, 0.5)

    code, stdout, _ = await startbox(scripted, "batch", "report", str(out), "--json")
    assert code == 0 and json.loads(stdout)["failures"] == {"wrong": 2}


async def test_batch_run_errors_name_the_fix(scripted: ScriptedServer, tmp_path: Path) -> None:
    missing = tmp_path / "none.jsonl"
    code, _, stderr = await startbox(scripted, "batch", "run", str(missing), "--out", "x")
    assert code == 2 and "humaneval" in stderr
    code, _, stderr = await startbox(
        scripted, "batch", "run", "sample", "--out", "x", "--field", "nope"
    )
    assert code == 2 and "question=NAME" in stderr


async def test_grade_saved_outputs(scripted: ScriptedServer, tmp_path: Path) -> None:
    """`startbox grade`: rows of a known layout plus `response`, no model involved."""
    rows = [
        {"id": 1, "problem": "2+2?", "answer": "4",
         "response": "<think>\\boxed{5}? no.</think>\nSo $\\boxed{4}$."},
        {"id": 2, "problem": "3+3?", "answer": "6", "response": "The final answer is 7."},
        {"id": 3, "problem": "Angle?", "answer": "45",
         "responses": ["$\\boxed{45^\\circ}$", "$\\boxed{45}$", "$\\boxed{40}$"]},
    ]  # fmt: skip
    data = tmp_path / "aime_like.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "graded.jsonl"
    code, stdout, stderr = await startbox(
        scripted, "grade", str(data), "--kind", "math", "--out", str(out)
    )
    assert code == 0, stderr
    assert "layout question_answer" in stderr
    graded = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(g["id"], g["extracted"], g["correct"], g["cause"]) for g in graded] == [
        ("1", "4", True, None),
        ("2", "7", False, "wrong"),
        ("3", "45^\\circ", True, None),
    ]
    assert graded[0]["response"] == rows[0]["response"]  # the input row is kept
    summary = json.loads(out.with_suffix(".summary.json").read_text())
    assert summary["samples"] == 5 and summary["layouts"] == ["question_answer"]
    assert "accuracy" in stdout
