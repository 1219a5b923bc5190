"""The sampling flags as a user types them: `solve`, `batch run` and `rft eval` send them in
every model request, trajectories record the sampling used, and a bad value names its flag."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from model_host.scripted import ScriptedServer
from tests.workflows.test_cli import startbox
from workflows.rft.trajectory import read_trajectories

KNOBS = ("temperature", "top_p", "top_k", "min_p", "presence_penalty", "repetition_penalty")
QWEN3 = {"temperature": 0.6, "top_p": 0.95, "top_k": 20, "min_p": 0.0}


def sent(server: ScriptedServer, question: str) -> list[dict[str, Any]]:
    bodies = [r for r in server.requests if question in r.get("prompt", "")]
    assert bodies
    return [{k: body[k] for k in KNOBS if k in body} for body in bodies]


def one_problem(tmp_path: Path, question: str) -> Path:
    """A dataset of one problem the scripted model answers right (4)."""
    data = tmp_path / "set.jsonl"
    data.write_text(json.dumps({"id": "r", "question": question, "answer": "4"}) + "\n")
    return data


async def test_solve_sends_the_flags_sampling(scripted: ScriptedServer) -> None:
    question = "RIGHT: solve 2+2?"
    flags = ["--temperature", "0", "--top-k", "7", "--repetition-penalty", "1.2"]
    code, out, err = await startbox(scripted, "solve", question, "--json", *flags)
    assert code == 0, err
    used = {**QWEN3, "temperature": 0.0, "top_k": 7, "repetition_penalty": 1.2}
    assert sent(scripted, question) == [used, used]
    started = json.loads(out.splitlines()[0])
    assert started["options"]["sampling"] == {**used, "presence_penalty": None}


async def test_a_bad_sampling_value_names_its_flag(scripted: ScriptedServer) -> None:
    code, _, err = await startbox(scripted, "solve", "q", "--top-p", "0")
    assert code == 2 and "--top-p" in err and "greater than 0" in err
    code, _, err = await startbox(scripted, "batch", "run", "sample", "--out", "x",
                                  "--presence-penalty", "9")  # fmt: skip
    assert code == 2 and "--presence-penalty" in err


async def test_batch_run_sends_the_flags_sampling(scripted: ScriptedServer, tmp_path: Path) -> None:
    data = one_problem(tmp_path, "RIGHT: batch 2+2?")
    out = tmp_path / "results.jsonl"
    code, _, err = await startbox(scripted, "batch", "run", str(data), "--out", str(out),
                                  "--min-p", "0.25", "--presence-penalty", "0.5")  # fmt: skip
    assert code == 0, err
    used = {**QWEN3, "min_p": 0.25, "presence_penalty": 0.5}
    assert sent(scripted, "RIGHT: batch") == [used, used]


async def test_rft_eval_records_the_sampling_it_used(
    scripted: ScriptedServer, tmp_path: Path
) -> None:
    data = one_problem(tmp_path, "RIGHT: eval 2+2?")
    out = tmp_path / "eval.jsonl"
    code, _, err = await startbox(scripted, "rft", "eval", str(data), "--out", str(out),
                                  "--concurrency", "1", "--repetition-penalty", "1.15")  # fmt: skip
    assert code == 0, err
    used = {**QWEN3, "repetition_penalty": 1.15}
    assert sent(scripted, "RIGHT: eval") == [used, used]
    [trajectory] = read_trajectories(out)
    assert trajectory.correct
    assert trajectory.options["sampling"] == {**used, "presence_penalty": None}
