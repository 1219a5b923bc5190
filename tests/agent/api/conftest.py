"""A real `startbox api` process on loopback, its model the scripted server of the test."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import httpx
import pytest

from model_host.scripted import Reply, ScriptedServer
from tests.ports import free_port, scripted_api_env

KEY = "test-key"
OTHER_KEY = "second-key"
ADMIN_KEY = "admin-key"
MAX_RUNS = 3
KERNEL_TTL = 3.0  # seconds: short, so that a test sees an idle kernel go


@dataclass
class Server:
    """A running `startbox api`."""

    url: str
    log: Path
    process: asyncio.subprocess.Process

    def client(self, key: str | None = KEY, timeout: float = 60) -> httpx.AsyncClient:
        headers = {"x-api-key": key} if key else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=timeout)


@dataclass
class Api(Server):
    """One whose model is the test's scripted server."""

    scripted: ScriptedServer


@pytest.fixture(scope="session")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    async with (
        ScriptedServer([], default=Reply(text="<think>\nok</think>")) as scripted,
        running_api(scripted, tmp_path_factory.mktemp("api")) as api,
    ):
        yield api


def startbox() -> str:
    return str(Path(sys.executable).with_name("startbox"))


def api_env(model_url: str, workdir: Path, port: int, **env: str) -> dict[str, str]:
    """The environment of a test's `startbox api`: the test keys, small limits, a short
    kernel TTL; `env` adds or overrides variables."""
    return {
        **scripted_api_env(
            model_url,
            workdir,
            port,
            keys=f"{KEY},{OTHER_KEY}",
            admin_keys=ADMIN_KEY,
            max_concurrent_runs=str(MAX_RUNS),
            max_body_bytes=str(64 * 1024),
        ),
        "STARTBOX_SANDBOX_POOL_SIZE": "2",
        "STARTBOX_AGENT_KERNEL_TTL": str(KERNEL_TTL),
        "STARTBOX_SANDBOX_ACQUIRE_TIMEOUT": "180",  # container starts crawl on a loaded machine
        **env,
    }


@contextlib.asynccontextmanager
async def serving(environment: dict[str, str], workdir: Path, port: int) -> AsyncIterator[Server]:
    """`startbox api` with `environment` until ready; stopped (SIGTERM) on exit unless dead."""
    path = workdir / f"api-{port}.log"
    with path.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            startbox(), "api", env=environment, stdout=log, stderr=log
        )
        url = f"http://127.0.0.1:{port}"
        try:
            await _wait_ready(process, url, path)
            yield Server(url=url, log=path, process=process)
        finally:
            if process.returncode is None:
                process.terminate()
                await asyncio.wait_for(process.wait(), 60)


@contextlib.asynccontextmanager
async def running_api(
    scripted: ScriptedServer, workdir: Path, port: int | None = None, **env: str
) -> AsyncIterator[Api]:
    """`startbox api` on loopback over the scripted model, its store in `workdir`; `env`
    adds or overrides variables."""
    port = port or free_port()
    async with serving(api_env(scripted.base_url, workdir, port, **env), workdir, port) as server:
        yield Api(url=server.url, log=server.log, process=server.process, scripted=scripted)


async def _wait_ready(process: asyncio.subprocess.Process, url: str, log: Path) -> None:
    def failed(why: str) -> None:
        pytest.fail(f"{why}:\n{log.read_text()[-4000:]}")

    async with httpx.AsyncClient(timeout=2) as client:
        for _ in range(480):  # 4 min: the machine may be loaded
            if process.returncode is not None:
                failed(f"startbox api exited {process.returncode}")
            try:
                if (await client.get(f"{url}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.5)
    failed("startbox api not ready after 4 min")


def load(api: Api, *turns: str) -> None:
    """The model turns of the next run(s)."""
    api.scripted.replies = [Reply(text=turn) for turn in turns]


def first_prompt(api: Api, text: str) -> str:
    """The prompt of the first model call whose prompt holds `text` (other tests' runs may
    call the model meanwhile, so positions in the request log are not reliable)."""
    return next(r["prompt"] for r in api.scripted.requests if text in r.get("prompt", ""))


class SseMessage(TypedDict):
    id: str
    event: str
    data: dict[str, Any]  # the trace event, parsed from its JSON


async def sse_events(client: httpx.AsyncClient, run_id: str, **headers: str) -> list[SseMessage]:
    """All SSE messages of a run, with the parsed data."""
    import json

    messages: list[SseMessage] = []
    current: dict[str, str] = {}
    async with client.stream("GET", f"/v1/runs/{run_id}/events", headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        async for line in response.aiter_lines():
            if not line:
                if "data" in current:
                    data = json.loads(current["data"])
                    event = current.get("event", "message")  # SSE's default event type
                    messages.append(SseMessage(id=current.get("id", ""), event=event, data=data))
                current = {}
                continue
            field, _, value = line.partition(":")
            current[field] = value.strip()
    return messages


async def turn(client: httpx.AsyncClient, tid: str, question: str, **options: object) -> list[dict]:
    """One turn of thread `tid`, run to its end (ok); its events' data."""
    created = await client.post(f"/v1/threads/{tid}/runs", json={"question": question, **options})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["thread_id"] == tid
    events = await sse_events(client, body["id"])
    assert events[-1]["data"]["status"] == "ok", events[-1]
    return [m["data"] for m in events]


def outputs(events: list[dict]) -> list[str]:
    return [e["stdout"] for e in events if e["type"] == "execution"]


def of_type(events: list[dict], kind: str) -> list[dict]:
    return [e for e in events if e["type"] == kind]
