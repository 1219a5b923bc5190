"""Bad input and faults end a run cleanly: an error event, never a hang, the sandbox released."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.events import Error, RunFinished
from agent.service import Agent, QuestionError
from model_host.scripted import Reply, ScriptedServer
from tests.agent.conftest import Script, collect, make_agent, of_type


async def test_empty_and_over_long_questions_are_refused(agent: Agent) -> None:
    with pytest.raises(QuestionError, match="empty"):
        await collect(agent, "   ")
    with pytest.raises(QuestionError, match="over the limit"):
        await collect(agent, "x" * (agent.settings.max_question_chars + 1))


async def test_model_server_killed_mid_run(tmp_path: Path) -> None:
    turns = [
        Reply(text="<think>\n```python\nprint(1)\n```\n"),
        Reply(text="thinking on and on and on", drop_after=2, die=True),
    ]
    async with (
        ScriptedServer(turns) as server,
        make_agent(server.base_url, tmp_path / "r.db") as agent,
    ):
        events = await collect(agent)
        assert agent.pool.size["in_use"] == 0
    errors = of_type(events, "error")
    assert len(errors) == 1 and isinstance(errors[0], Error)
    finished = events[-1]
    assert isinstance(finished, RunFinished)
    assert finished.status == "error" and finished.usage.tool_calls == 1


async def test_run_timeout_ends_the_run(agent: Agent, script: Script) -> None:
    script("<think>\n```python\nimport time\ntime.sleep(30)\n```\n")
    events = await collect(agent, timeout=2, code_timeout=20)
    error = of_type(events, "error")[0]
    assert isinstance(error, Error) and "timeout" in error.message
    assert events[-1].status == "error"  # type: ignore[union-attr]
    assert agent.pool.size["in_use"] == 0


async def test_a_reader_that_stops_early_cancels_the_run(agent: Agent, script: Script) -> None:
    script("<think>\n```python\nprint(1)\n```\n", "</think>", "\\boxed{1}")
    stream = agent.solve("stop early")
    first = await anext(stream)
    await stream.aclose()
    assert agent.store is not None
    record = await agent.store.get(first.run_id, with_events=False)
    assert record is not None and record.status == "cancelled"
    assert agent.pool.size["in_use"] == 0
