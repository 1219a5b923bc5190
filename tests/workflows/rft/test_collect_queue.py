"""`rft collect --queue`: trajectories solved by `startbox worker`s on a real Redis, with their
segments read from the worker's run store, and a resubmit that queues nothing done; in-process,
failed runs fail the command."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from model_host.profiles import get_profile
from model_host.scripted import Reply, ScriptedServer
from tests.workflows.conftest import RedisProcess
from tests.workflows.test_queue import env, startbox
from workflows import queue

STARTBOX = str(Path(sys.executable).with_name("startbox"))
CODE_START = get_profile("qwen3").code_start


def hinted_round(request: dict[str, Any]) -> Reply:
    """Thinks, stops; after Hint-infer's hint writes code; reads its output; answers."""
    prompt = request.get("prompt", "")
    if "CRASH" in prompt:
        return Reply(status=500)
    if prompt.endswith(CODE_START):
        return Reply(text="print(2 + 2)\n```\n")
    if prompt.endswith("</think>"):
        return Reply(text="\n\n\\boxed{4}")
    if "```output" in prompt:
        return Reply(text="So it is 4.</think>")
    return Reply(text="<think>\nEasy: 2 + 2 = 4.</think>")


@pytest.fixture(scope="module")
async def model() -> AsyncIterator[ScriptedServer]:
    async with ScriptedServer([], default=hinted_round) as server:
        yield server


async def test_collect_on_the_queue_keeps_segments_and_resumes(
    model: ScriptedServer, tmp_path: Path
) -> None:
    redis = RedisProcess(tmp_path / "redis").start()
    try:
        data, out = tmp_path / "q.jsonl", tmp_path / "traj.jsonl"
        data.write_text("".join(json.dumps({"id": i, "problem": f"{i}: 2 + 2?", "answer": "4"})
                                + "\n" for i in ("a", "b")))  # fmt: skip
        environment = env(redis.url, model.base_url, STARTBOX_AGENT_PERSIST="true",
                          STARTBOX_AGENT_STORE_PATH=str(tmp_path / "runs.db"))  # fmt: skip
        args = [
            "rft",
            "collect",
            str(data),
            "--out",
            str(out),
            "--queue",
            "q1",
            "--min-tool-calls",
            "1",
            "--thinking-budget",
            "64",
            "--answer-budget",
            "32",
        ]
        collect = asyncio.create_task(startbox(environment, *args, wait=240))
        pool = await queue.connect(queue.QueueSettings(redis_url=redis.url))
        try:
            async with asyncio.timeout(60):
                while True:  # the batch is submitted before any worker starts
                    try:
                        if (await queue.status(pool, "q1")).queued == 2:
                            break
                    except queue.BatchNotFound:
                        pass
                    await asyncio.sleep(0.2)
        finally:
            await pool.aclose()
        code, log = await startbox(environment, "worker", "--concurrency", "2", "--burst",
                                   wait=180)  # fmt: skip
        assert code == 0, log
        code, log = await collect
        assert code == 0 and "wrote 2 trajectories of batch q1" in log, log
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert sorted(r["problem_id"] for r in rows) == ["a", "b"]
        for row in rows:
            assert row["correct"] and row["tool_calls"] == 1 and row["hints"] == 1, row
            assert [s["kind"] for s in row["segments"]] == [
                "model", "hint", "code", "tool_output", "model"
            ]  # fmt: skip
            assert row["segments"][3]["text"] == "\n```output\n4\n```\n"
            assert row["options"]["min_tool_calls"] == 1 and row["model"] == "scripted"

        code, log = await startbox(environment, *args, wait=120)  # a rerun: nothing to solve
        assert code == 0 and "0 jobs queued, 2 already" in log, log
        assert len(out.read_text().splitlines()) == 2
    finally:
        redis.stop()


async def test_failed_runs_fail_the_command_and_a_rerun_retries_them(
    model: ScriptedServer, tmp_path: Path
) -> None:
    """In-process: the good run is kept, the one the model server failed makes exit 1."""
    data, out = tmp_path / "q.jsonl", tmp_path / "traj.jsonl"
    data.write_text("".join(json.dumps({"id": i, "problem": f"{i}: 2 + 2?", "answer": "4"})
                            + "\n" for i in ("ok", "CRASH")))  # fmt: skip
    environment = env("redis://127.0.0.1:1", model.base_url, STARTBOX_AGENT_PERSIST="true",
                      STARTBOX_AGENT_STORE_PATH=str(tmp_path / "runs.db"))  # fmt: skip
    args = ["rft", "collect", str(data), "--out", str(out), "--thinking-budget", "64"]
    code, log = await startbox(environment, *args, wait=180)
    assert code == 1 and "1 runs failed or are missing" in log and "rerun to retry" in log, log
    rows = {
        json.loads(line)["problem_id"]: json.loads(line) for line in out.read_text().splitlines()
    }
    assert rows["ok"]["correct"] and rows["CRASH"]["cause"] == "run_error"
    code, log = await startbox(environment, *args, wait=180)
    assert code == 1 and "1 runs to do, 1 already" in log, log
