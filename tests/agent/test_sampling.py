"""Sampling as the model server receives it: the profile's, under the configured default and
the run's own choices, in every request of a run (after a hint, a tool round, a forced answer)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.events import Event, RunStarted
from agent.service import Agent
from agent.settings import AgentSettings
from model_host.profiles import SamplingOverrides
from model_host.scripted import ScriptedServer
from model_host.settings import ModelSettings
from sandbox.settings import SandboxSettings
from tests.agent.conftest import Script, collect

# thinking ends at once -> hint -> code runs -> thinking runs out of budget -> forced answer
TURNS = ("<think>\nEasy.</think>", "print(6 * 7)\n```\n", "so " * 40, "\\boxed{42}")
ROUTE: dict[str, Any] = {"min_tool_calls": 1, "thinking_budget": 24}
KNOBS = ("temperature", "top_p", "top_k", "min_p", "presence_penalty", "repetition_penalty")


def sent(server: ScriptedServer) -> list[dict[str, Any]]:
    """Each request's sampling fields, as the server received them."""
    return [{k: body[k] for k in KNOBS if k in body} for body in server.requests]


def recorded(events: list[Event]) -> object:
    """The sampling the run says it used (run_started's options, as stored), once every route
    was taken."""
    assert {"hint", "execution", "budget_exhausted"} <= {e.type for e in events}
    started = events[0]
    assert isinstance(started, RunStarted)
    return started.options["sampling"]


async def test_with_nothing_set_every_request_has_the_profiles_sampling(
    agent: Agent, script: Script
) -> None:
    server = script(*TURNS)
    events = await collect(agent, **ROUTE)
    qwen3 = {"temperature": 0.6, "top_p": 0.95, "top_k": 20, "min_p": 0.0}
    assert sent(server) == [qwen3] * 4  # no penalty is sent: the server's default holds
    assert recorded(events) == {**qwen3, "presence_penalty": None, "repetition_penalty": None}


async def test_the_runs_sampling_reaches_every_request_and_is_recorded(
    agent: Agent, script: Script
) -> None:
    server = script(*TURNS)
    chosen = {"temperature": 0.0, "top_k": 5, "repetition_penalty": 1.3}
    events = await collect(agent, **ROUTE, sampling=chosen)
    used = {"temperature": 0.0, "top_p": 0.95, "top_k": 5, "min_p": 0.0, "repetition_penalty": 1.3}
    assert sent(server) == [used] * 4
    assert recorded(events) == {**used, "presence_penalty": None}
    assert agent.store is not None
    record = await agent.store.get(events[0].run_id, with_events=False)
    assert record is not None and record.options["sampling"] == recorded(events)


async def test_the_configured_default_is_under_the_runs_choice(
    scripted: ScriptedServer, script: Script, tmp_path: Path
) -> None:
    model = ModelSettings(
        base_url=scripted.base_url, served_name="scripted", profile="qwen3", retries=1,
        sampling=SamplingOverrides(temperature=0.1, presence_penalty=0.5),
    )  # fmt: skip
    settings = AgentSettings(store_path=tmp_path / "runs.db", round_tokens=64)
    base = {"top_p": 0.95, "top_k": 20, "min_p": 0.0, "presence_penalty": 0.5}
    async with Agent(settings, model, SandboxSettings(pool_size=1)) as configured:
        server = script("<think>\nEasy.</think>", "\\boxed{1}")
        await collect(configured)
        assert sent(server) == [{**base, "temperature": 0.1}] * 2
        server = script("<think>\nEasy.</think>", "\\boxed{1}")
        await collect(configured, sampling={"temperature": 0.9})
        assert sent(server) == [{**base, "temperature": 0.9}] * 2
