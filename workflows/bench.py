"""`startbox batch bench`: what the Redis queue costs, and how throughput grows with workers.

The model is the scripted server (it answers at once, standing in for a fast GPU), so the
figures are the batch machinery's own: agent loop, grading, queue round trips. Each queued
measure first runs a warm-up batch, so worker start-up (agent, sandbox pool) is not counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from agent.service import Agent
from agent.settings import AgentSettings, RunOptions
from model_host.scripted import Reply, ScriptedServer
from model_host.settings import ModelSettings
from sandbox.settings import SandboxSettings
from workflows import queue
from workflows.datasets import Problem
from workflows.grading import Grader
from workflows.redis_server import redis_command
from workflows.runner import run_batch

OPTIONS = RunOptions(timeout=120, thinking_budget=64, answer_budget=32)


class BenchRow(BaseModel):
    mode: str  # in-process | queue
    workers: int
    concurrency: int  # runs at once per worker (or in-process)
    jobs: int
    jobs_per_s: float
    ms_per_job: float


def answer(request: dict[str, Any]) -> Reply:
    prompt = request.get("prompt", "")
    return Reply(text="\n\n\\boxed{4}" if prompt.endswith("</think>") else "<think>\nok</think>")


def problems(count: int, tag: str) -> list[Problem]:
    return [
        Problem(dataset="bench", id=f"{tag}-{i}", kind="math", question=f"2+2? ({tag} {i})",
                reference="4")
        for i in range(count)
    ]  # fmt: skip


async def in_process(base_url: str, jobs: int, concurrency: int, home: Path) -> BenchRow:
    await asyncio.to_thread(home.mkdir, parents=True, exist_ok=True)
    model = ModelSettings(base_url=base_url, served_name="scripted", profile="qwen3")
    agent = Agent(AgentSettings(home=home, persist=False), model, SandboxSettings(pool_size=0))
    async with agent, Grader(agent.pool) as grader:
        await run_batch(agent, grader, problems(concurrency, "warm"), home / "warm.jsonl", OPTIONS,
                        concurrency=concurrency)  # fmt: skip
        started = time.perf_counter()
        await run_batch(agent, grader, problems(jobs, "run"), home / "run.jsonl", OPTIONS,
                        concurrency=concurrency)  # fmt: skip
        elapsed = time.perf_counter() - started
    return _row("in-process", 1, concurrency, jobs, elapsed)


async def queued(
    base_url: str, redis_url: str, jobs: int, workers: int, concurrency: int, batch: str
) -> BenchRow:
    env = {**os.environ, "STARTBOX_QUEUE_REDIS_URL": redis_url,
           "STARTBOX_MODEL_BASE_URL": base_url, "STARTBOX_MODEL_PROFILE": "qwen3",
           "STARTBOX_MODEL_SERVED_NAME": "scripted", "STARTBOX_AGENT_PERSIST": "false",
           "STARTBOX_SANDBOX_POOL_SIZE": "0"}  # fmt: skip
    startbox = str(Path(sys.executable).with_name("startbox"))
    redis = await queue.connect(queue.QueueSettings(redis_url=redis_url))
    command = [startbox, "worker", "--concurrency", str(concurrency)]
    quiet = asyncio.subprocess.DEVNULL
    processes = [
        await asyncio.create_subprocess_exec(*command, env=env, stdout=quiet, stderr=quiet)
        for _ in range(workers)
    ]
    try:
        await _drain(redis, f"{batch}-warm", problems(workers * concurrency * 2, "warm"))
        started = time.perf_counter()
        await _drain(redis, batch, problems(jobs, "run"))
        elapsed = time.perf_counter() - started
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            await asyncio.wait_for(process.wait(), 60)
        await redis.aclose()
    return _row("queue", workers, concurrency, jobs, elapsed)


async def _drain(redis: Any, name: str, batch: list[Problem], limit: float = 600) -> None:
    await queue.submit(redis, name, batch, 1, OPTIONS)
    async with asyncio.timeout(limit):
        while await queue.done_count(redis, name) < len(batch):  # noqa: ASYNC110 - polls Redis
            await asyncio.sleep(0.05)


def _row(mode: str, workers: int, concurrency: int, jobs: int, elapsed: float) -> BenchRow:
    return BenchRow(mode=mode, workers=workers, concurrency=concurrency, jobs=jobs,
                    jobs_per_s=jobs / elapsed, ms_per_job=elapsed * 1000 / jobs)  # fmt: skip


@contextlib.asynccontextmanager
async def redis_server(directory: Path) -> AsyncIterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    command = redis_command(port, directory)
    server = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.DEVNULL)
    try:
        yield f"redis://127.0.0.1:{port}"
    finally:
        server.terminate()
        await asyncio.wait_for(server.wait(), 30)


async def bench(jobs: int, workers: list[int], concurrency: int) -> list[BenchRow]:
    """Concurrency 1 in-process and 1x1 queued give the queue's cost per job; then throughput."""
    rows: list[BenchRow] = []
    with tempfile.TemporaryDirectory(prefix="startbox-batch-bench-") as tmp:
        home = Path(tmp)
        async with (
            ScriptedServer([], default=answer) as server,
            redis_server(home / "redis") as url,
        ):
            rows.append(await in_process(server.base_url, jobs, 1, home / "serial"))
            rows.append(await queued(server.base_url, url, jobs, 1, 1, "serial"))
            rows.append(await in_process(server.base_url, jobs, concurrency, home / "parallel"))
            for count in workers:
                rows.append(
                    await queued(server.base_url, url, jobs, count, concurrency, f"w{count}")
                )
    return rows
