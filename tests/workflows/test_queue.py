"""Batches on a real redis-server: submit, resubmit, workers, status, results, cancel, and a
worker SIGKILLed mid-job whose job another worker finishes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import docker
import pytest
from arq.connections import ArqRedis

from agent.settings import RunOptions
from model_host.scripted import ScriptedServer
from sandbox.owner import OWNER_LABEL, list_sandboxes
from tests.ports import free_port
from tests.workflows.conftest import RedisProcess
from workflows import queue
from workflows.bench import Hang
from workflows.datasets import Problem
from workflows.results import SampleResult

STARTBOX = str(Path(sys.executable).with_name("startbox"))


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = RedisProcess(tmp_path_factory.mktemp("redis")).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[ArqRedis]:
    pool = await queue.connect(queue.QueueSettings(redis_url=redis_url))
    yield pool
    await pool.aclose()


def env(redis_url: str, base_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "STARTBOX_QUEUE_REDIS_URL": redis_url,
        "STARTBOX_MODEL_BASE_URL": base_url,
        "STARTBOX_MODEL_PROFILE": "qwen3",
        "STARTBOX_MODEL_SERVED_NAME": "scripted",
        "STARTBOX_MODEL_RETRIES": "0",
        "STARTBOX_AGENT_PERSIST": "false",
        "STARTBOX_AGENT_ROUND_TOKENS": "64",
        "STARTBOX_AGENT_TIMEOUT": "60",
        "STARTBOX_SANDBOX_POOL_SIZE": "1",
        "COLUMNS": "200",
        **extra,
    }


async def startbox(environment: dict[str, str], *args: str, wait: float = 120) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        STARTBOX, *args, env=environment,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), wait)
    assert process.returncode is not None
    return process.returncode, out.decode()


def problems(*questions: str) -> list[Problem]:
    return [
        Problem(dataset="q", id=q.split(":")[0].lower(), kind="math", question=q, reference="4")
        for q in questions
    ]


async def test_submit_work_status_results_cancel(
    scripted: ScriptedServer, redis_url: str, redis: ArqRedis, tmp_path: Path
) -> None:
    data = tmp_path / "q.jsonl"
    rows = [{"id": q.split(":")[0].lower(), "problem": q, "answer": "4"}
            for q in ("RIGHT: 2+2?", "WRONG: 2+2?", "CRASH: 2+2?")]  # fmt: skip
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    environment = env(redis_url, scripted.base_url)
    submit = ["batch", "submit", str(data), "--name", "b1", "--samples", "2"]
    code, out = await startbox(environment, *submit)
    assert code == 0 and "6 jobs queued, 0 already" in out, out
    code, out = await startbox(environment, *submit)
    assert code == 0 and "0 jobs queued, 6 already" in out, out
    code, out = await startbox(environment, "batch", "status", "b1")
    assert "0/6 done" in out and "6 queued" in out, out

    code, out = await startbox(environment, "worker", "--concurrency", "3", "--burst")
    assert code == 0, out
    code, out = await startbox(environment, "batch", "status", "b1")
    assert "6/6 done, 2 correct, 0 queued, 0 running" in out, out
    results = tmp_path / "b1.jsonl"
    code, out = await startbox(environment, "batch", "results", "b1", "--out", str(results))
    assert code == 0 and "pass@2" in out, out
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    assert sorted((r["problem_id"], r["sample"], r["correct"], r["cause"]) for r in lines) == [
        ("crash", 0, False, "run_error"),
        ("crash", 1, False, "run_error"),
        ("right", 0, True, None),
        ("right", 1, True, None),
        ("wrong", 0, False, "wrong"),
        ("wrong", 1, False, "wrong"),
    ]

    code, out = await startbox(environment, *submit)  # only the failed runs go again
    assert "2 jobs queued, 4 already" in out, out
    code, out = await startbox(environment, "batch", "cancel", "b1")
    assert code == 0 and "2 queued jobs dropped" in out, out
    code, out = await startbox(environment, "batch", "status", "b1")
    assert "0 queued" in out and "(cancelled)" in out, out
    code, out = await startbox(environment, "batch", "status", "nope")
    assert code == 1 and "no batch named 'nope'" in out


async def test_a_killed_workers_job_is_finished_by_another(
    scripted: ScriptedServer, redis_url: str, redis: ArqRedis
) -> None:
    """Jobs may run 900 s, yet the dead worker's job is free once its 3 s lease lapses."""
    options = RunOptions(timeout=60, thinking_budget=64, answer_budget=32)
    assert await queue.submit(redis, "kill", problems("RIGHT: 2+2?"), 1, options) == (1, 0)
    hang = Hang()
    async with hang as hanging_url:
        doomed = await asyncio.create_subprocess_exec(
            STARTBOX, "worker", "--concurrency", "1",
            env=env(redis_url, hanging_url, STARTBOX_QUEUE_LEASE="3"),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            await asyncio.wait_for(hang.called.wait(), 120)  # the job is mid-run
            await asyncio.sleep(4)  # longer than the lease: only renewal keeps it held
            assert (await queue.status(redis, "kill")).running == 1
        finally:
            doomed.kill()  # SIGKILL: no cleanup, the lease is no longer renewed
            await asyncio.wait_for(doomed.wait(), 30)
        killed = time.monotonic()
        async with asyncio.timeout(30):
            while (await queue.status(redis, "kill")).running:  # noqa: ASYNC110 - polls Redis
                await asyncio.sleep(0.2)
        assert time.monotonic() - killed < 10
        status = await queue.status(redis, "kill")
        assert (status.running, status.queued, status.done) == (0, 1, 0)
    code, out = await startbox(env(redis_url, scripted.base_url), "worker", "--burst", wait=180)
    assert code == 0 and "try=2" in out, out  # arq's own retry count: the same job again
    done = await queue.results(redis, "kill", SampleResult)
    assert [(r.problem_id, r.sample, r.correct) for r in done] == [("right", 0, True)]
    status = await queue.status(redis, "kill")
    assert (status.done, status.queued, status.running) == (1, 0, 0)


async def test_cancel_stops_a_running_job_and_drops_the_queued(
    redis_url: str, redis: ArqRedis
) -> None:
    options = RunOptions(timeout=300, thinking_budget=64, answer_budget=32)
    batch = problems("RIGHT: 2+2?", "WRONG: 2+2?")
    assert await queue.submit(redis, "stop", batch, 1, options) == (2, 0)
    hang = Hang()
    async with hang as hanging_url:
        worker = await asyncio.create_subprocess_exec(
            STARTBOX, "worker", "--concurrency", "1", env=env(redis_url, hanging_url),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        try:
            await asyncio.wait_for(hang.called.wait(), 120)  # one job is mid-run, one queued
            code, out = await startbox(env(redis_url, hanging_url), "batch", "cancel", "stop")
            assert code == 0, out
            assert "1 queued jobs dropped, 1 running jobs stopped" in out, out
            status = await queue.status(redis, "stop")
            assert (status.queued, status.running, status.done) == (0, 0, 0)
            assert worker.returncode is None  # the worker lives on for other batches
        finally:
            worker.terminate()
            log, _ = await asyncio.wait_for(worker.communicate(), 60)
    assert "aborted" in log.decode(), log.decode()[-2000:]
    assert await queue.results(redis, "stop", SampleResult) == []


async def test_startbox_redis_serves_with_append_only_persistence(tmp_path: Path) -> None:
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        STARTBOX, "redis", "--port", str(port), "--directory", str(tmp_path),
        stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        settings = queue.QueueSettings(redis_url=f"redis://127.0.0.1:{port}")
        async with asyncio.timeout(30):
            while True:
                try:
                    pool = await queue.connect(settings)
                    break
                except ConnectionError:
                    await asyncio.sleep(0.2)
        assert await pool.config_get("appendonly") == {"appendonly": "yes"}
        assert await pool.config_get("bind") == {"bind": "127.0.0.1"}
        await pool.aclose()
    finally:
        server.terminate()
        await asyncio.wait_for(server.wait(), 10)
    assert os.listdir(tmp_path)  # the append-only files


async def wait_done(url: str, name: str, count: int, within: float = 120) -> None:
    """Until `count` results of batch `name` are stored; a fresh connection per look, since
    Redis may be restarting."""
    settings = queue.QueueSettings(redis_url=url)
    async with asyncio.timeout(within):
        while True:
            with contextlib.suppress(ConnectionError):
                pool = await queue.connect(settings)
                try:
                    if await queue.done_count(pool, name) >= count:
                        return
                finally:
                    await pool.aclose()
            await asyncio.sleep(0.3)


async def test_workers_carry_on_after_a_redis_restart(
    scripted: ScriptedServer, tmp_path: Path
) -> None:
    server = RedisProcess(tmp_path / "redis").start()
    worker = await asyncio.create_subprocess_exec(
        STARTBOX, "worker", "--concurrency", "2", env=env(server.url, scripted.base_url),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        options = RunOptions(timeout=60, thinking_budget=64, answer_budget=32)
        pool = await queue.connect(queue.QueueSettings(redis_url=server.url))
        await queue.submit(pool, "before", problems("RIGHT: 2+2?", "WRONG: 2+2?"), 1, options)
        await pool.aclose()
        await wait_done(server.url, "before", 2)
        await asyncio.sleep(1.5)  # the append-only file is synced every second
        server.kill()
        await asyncio.sleep(3)
        server.start()  # the same port and directory
        pool = await queue.connect(queue.QueueSettings(redis_url=server.url))
        await queue.submit(pool, "after", problems("RIGHT: 2+2?", "WRONG: 2+2?"), 2, options)
        await wait_done(server.url, "after", 4)
        assert worker.returncode is None  # it reconnected and took the new batch
        for name, total in (("before", 2), ("after", 4)):
            status = await queue.status(pool, name)
            assert (status.done, status.queued, status.running) == (total, 0, 0)
        await pool.aclose()
    finally:
        worker.terminate()
        log, _ = await asyncio.wait_for(worker.communicate(), 60)
        server.stop()
    assert "Redis lost" in log.decode() and "Redis is back" in log.decode(), log.decode()[-3000:]
    assert worker.returncode == 0, log.decode()[-3000:]


async def test_a_worker_that_cannot_reconnect_releases_everything_and_exits(
    tmp_path: Path,
) -> None:
    server = RedisProcess(tmp_path / "redis").start()
    pool = await queue.connect(queue.QueueSettings(redis_url=server.url))
    options = RunOptions(timeout=300, thinking_budget=64, answer_budget=32)
    await queue.submit(pool, "gone", problems("RIGHT: 2+2?"), 1, options)
    await pool.aclose()
    hang = Hang()
    try:
        async with hang as hanging_url:
            worker = await asyncio.create_subprocess_exec(
                STARTBOX, "worker", "--concurrency", "1",
                env=env(server.url, hanging_url, STARTBOX_QUEUE_RECONNECT_TIMEOUT="3"),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
            await asyncio.wait_for(hang.called.wait(), 120)  # mid-run, holding a sandbox
            assert sandboxes_of(worker.pid)
            server.kill()
            log, _ = await asyncio.wait_for(worker.communicate(), 60)
    finally:
        server.stop()
    text = log.decode()
    assert worker.returncode == 1, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    assert text.rstrip().splitlines()[-1].startswith("error: no Redis at"), text[-3000:]
    assert not sandboxes_of(worker.pid)  # its pool was closed, not left to a reaper


def sandboxes_of(pid: int) -> list[dict[str, object]]:
    mine = f"{socket.gethostname()}:{pid}:"
    return [c for c in list_sandboxes(docker.from_env())
            if c["Labels"].get(OWNER_LABEL, "").startswith(mine)]  # fmt: skip


async def test_submit_without_redis_fails_at_once_in_one_line() -> None:
    started = time.monotonic()
    code, out = await startbox(
        env(f"redis://127.0.0.1:{free_port()}", "http://127.0.0.1:9"), "batch", "submit", "sample"
    )
    assert time.monotonic() - started < 30  # the CLI's own start included
    assert code == 1 and len(out.strip().splitlines()) == 1, out
    assert out.startswith("error: no Redis at redis://127.0.0.1:") and "startbox redis" in out
