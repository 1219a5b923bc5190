"""The agent against the scripted model server (deterministic routes) and a real sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from agent.events import Event
from agent.service import Agent
from agent.settings import AgentSettings, RunOptions
from model_host.scripted import Reply, ScriptedServer
from model_host.settings import ModelSettings
from sandbox.settings import SandboxSettings


def make_agent(base_url: str, store: Path) -> Agent:
    return Agent(
        AgentSettings(store_path=store, round_tokens=64),
        ModelSettings(base_url=base_url, served_name="scripted", profile="qwen3", retries=1),
        SandboxSettings(pool_size=1),
    )


@pytest.fixture(scope="session")
async def scripted() -> AsyncIterator[ScriptedServer]:
    async with ScriptedServer([]) as server:
        yield server


@pytest.fixture(scope="session")
async def agent(
    scripted: ScriptedServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Agent]:
    async with make_agent(scripted.base_url, tmp_path_factory.mktemp("store") / "runs.db") as a:
        yield a


Script = Callable[..., ScriptedServer]


@pytest.fixture
def script(scripted: ScriptedServer) -> Script:
    """Load model turns for the next run; returns the server to inspect its requests."""

    def load(*turns: str | Reply) -> ScriptedServer:
        scripted.replies = [t if isinstance(t, Reply) else Reply(text=t) for t in turns]
        scripted.requests.clear()
        return scripted

    return load


async def collect(
    agent: Agent, question: str = "What is 6 times 7?", **options: object
) -> list[Event]:
    run_options = RunOptions.model_validate({"timeout": 60, **options})
    return [event async for event in agent.solve(question, run_options)]


def of_type(events: list[Event], kind: str) -> list[Event]:
    return [event for event in events if event.type == kind]
