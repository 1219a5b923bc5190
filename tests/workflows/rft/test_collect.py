"""`rft collect` in-process, on a real Docker sandbox: with `lead_answer` a budget-forced answer,
and a turn that ends with no marked answer, are opened the kind's way, so the answer lands in the
judge's `\\boxed{}` (a small model that only says "It is four" is graded wrong); and one
collect's runs share the tenant's recycled containers instead of one container each."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent.kinds import kind_of
from agent.settings import RunOptions
from model_host.profiles import get_profile
from model_host.scripted import Reply, ScriptedServer
from model_host.settings import ModelSettings
from workflows.datasets import Problem
from workflows.rft.collect import open_agent, trajectory_of

QWEN3 = get_profile("qwen3")
LEAD = kind_of("math").lead


def rambles_after_its_code(request: dict[str, Any]) -> Reply:
    """Thinks, takes the hint, computes 4, then rambles past the budget; when forced, answers
    inside a box only if the answer was opened for it."""
    prompt = request.get("prompt", "")
    if prompt.endswith(LEAD):
        return Reply(text="4}.")
    if prompt.endswith(QWEN3.early_stop_text):
        return Reply(text="It is four.")
    if prompt.endswith(QWEN3.code_start):
        return Reply(text="print(2 + 2)\n```\n")
    if "```output\n" in prompt and "STOPS" in prompt:  # ends its turn, answer unmarked
        return Reply(
            text="\n\nThe output is 4." if prompt.endswith("</think>") else "Done.</think>"
        )
    if "```output\n" in prompt:
        return Reply(text="so the sum is " + "four and " * 40)
    return Reply(text="<think>\nAdd them.</think>")


@pytest.fixture(scope="module")
async def model() -> AsyncIterator[ScriptedServer]:
    async with ScriptedServer([], default=rambles_after_its_code) as server:
        yield server


def settings(server: ScriptedServer) -> ModelSettings:
    return ModelSettings(
        base_url=server.base_url, served_name="scripted", profile="qwen3", retries=0
    )


PROBLEM = Problem(dataset="t", id="p", kind="math", question="What is 2 + 2?", reference="4")
OPTIONS = RunOptions(min_tool_calls=1, thinking_budget=40, answer_budget=16, max_tool_calls=1)


async def test_a_forced_answer_opened_with_a_box_is_read_by_the_judge(
    model: ScriptedServer, tmp_path: Path
) -> None:
    async with open_agent(settings(model), tmp_path / "t.jsonl", 2, round_tokens=64) as opened:
        agent, grader = opened
        led_options = OPTIONS.model_copy(update={"lead_answer": True})
        plain, led = await asyncio.gather(
            trajectory_of(agent, grader, PROBLEM, 0, OPTIONS),
            trajectory_of(agent, grader, PROBLEM, 1, led_options),
        )
    assert (plain.answer, plain.correct) == ("It is four", False)
    assert (led.answer, led.correct) == ("4", True), led
    forced = [s["text"] for s in led.segments if s["kind"] == "forced"]
    assert len(forced) == 1 and forced[0].endswith(QWEN3.early_stop_text + LEAD)
    assert led.segments[-1] == {"kind": "model", "text": "4}."}
    assert led.options["lead_answer"] and not plain.options["lead_answer"]


async def test_a_turn_ended_without_a_marked_answer_is_asked_for_it_once(
    model: ScriptedServer, tmp_path: Path
) -> None:
    stops = PROBLEM.model_copy(update={"question": "STOPS: what is 2 + 2?"})
    led_options = OPTIONS.model_copy(update={"lead_answer": True})
    async with open_agent(settings(model), tmp_path / "t.jsonl", 2, round_tokens=64) as opened:
        plain, led = await asyncio.gather(
            trajectory_of(*opened, stops, 0, OPTIONS), trajectory_of(*opened, stops, 1, led_options)
        )
    assert (plain.answer, plain.correct) == ("The output is 4", False)
    assert (led.answer, led.correct) == ("4", True), led
    assert not led.budget_exhausted
    assert [s["kind"] for s in led.segments][-3:] == ["model", "forced", "model"]
    assert led.segments[-2]["text"] == "\n\n" + LEAD  # no early-stop text: no budget was spent


async def test_one_collects_runs_reuse_the_tenants_recycled_container(
    model: ScriptedServer, tmp_path: Path
) -> None:
    async with open_agent(settings(model), tmp_path / "t.jsonl", 1, round_tokens=64) as opened:
        agent, grader = opened
        for sample in range(3):
            row = await trajectory_of(agent, grader, PROBLEM, sample, OPTIONS)
            assert row.tool_calls == 1 and row.tool_errors == 0, row
            await agent.pool.warm(timeout=60)  # the released container is reset, then kept
            assert (agent.pool.size["idle"], agent.pool.size["in_use"]) == (1, 0)
