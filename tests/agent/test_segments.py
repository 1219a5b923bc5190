"""Typed transcript segments: every route labels what it appends, and the store keeps them."""

from __future__ import annotations

from agent.segments import Segment, authored, joined
from agent.service import Agent
from model_host.profiles import get_profile
from tests.agent.conftest import Script, collect

QWEN3 = get_profile("qwen3")


def kinds(segments: list[Segment]) -> list[str]:
    return [segment["kind"] for segment in segments]


def test_model_text_splits_into_prose_and_code_at_the_fences() -> None:
    text = "Let me compute.\n```python\nprint(6 * 7)\n```\nSo"
    segments = authored([], "<think>\n", text, QWEN3.code_start, QWEN3.code_end)
    assert [(s["kind"], s["text"]) for s in segments] == [
        ("model", "Let me compute.\n"),
        ("code", "```python\nprint(6 * 7)\n```"),
        ("model", "\nSo"),
    ]


def test_text_after_an_open_fence_is_code() -> None:
    before = "Hmm.\nWait, maybe using Python here is a good idea.\n```python\n"
    segments = authored([], before, "x = 1\n```\n", QWEN3.code_start, QWEN3.code_end)
    assert kinds(segments) == ["code", "model"]


async def test_a_hinted_tool_round_is_stored_as_typed_segments(
    agent: Agent, script: Script
) -> None:
    script(
        "<think>\nEasy: 2 + 2 = 4.</think>",
        "print(2 + 2)\n```\n",
        "So it is 4.</think>",
        "\\boxed{4}",
    )
    events = await collect(agent, "What is 2 + 2?", min_tool_calls=1, seed=7)
    assert agent.store is not None and agent.checkpoints is not None
    stored = await agent.store.transcript(events[0].run_id)
    assert stored is not None
    assert stored.prompt.endswith("<|im_start|>assistant\n")  # the prompt is kept apart
    segments = stored.segments
    assert kinds(segments) == ["model", "hint", "code", "tool_output", "model"]
    assert segments[1]["text"].endswith(QWEN3.code_start)
    assert segments[2]["text"] == "print(2 + 2)\n```"
    assert segments[3]["text"] == "\n```output\n4\n```\n"
    state = (await agent.checkpoints.get(events[0].run_id)).values
    assert joined(segments) == state["transcript"]


async def test_failed_code_and_the_budget_text_are_labelled(agent: Agent, script: Script) -> None:
    script("<think>\n```python\n1 / 0\n```\n", "step " * 40, "\\boxed{1}")
    events = await collect(agent, thinking_budget=30)
    assert agent.store is not None and agent.checkpoints is not None
    stored = await agent.store.transcript(events[0].run_id)
    assert stored is not None
    # once (load 9) only ["model", "code"] was stored: the run's end says why, if it recurs
    assert kinds(stored.segments)[:4] == ["model", "code", "tool_error", "model"], events[-1]
    assert "forced" in kinds(stored.segments)
    forced = next(s for s in stored.segments if s["kind"] == "forced")
    assert forced["text"].endswith(QWEN3.early_stop_text)
    state = (await agent.checkpoints.get(events[0].run_id)).values
    assert joined(stored.segments) == state["transcript"]


async def test_hint_at_start_opens_the_turn_with_a_hint(agent: Agent, script: Script) -> None:
    server = script("print(3 * 3)\n```\n", "</think>", "\\boxed{9}")
    events = await collect(agent, "What is 3 * 3?", hint_at_start=True, min_tool_calls=1, seed=1)
    assert server.requests[0]["prompt"].endswith(QWEN3.code_start)
    assert agent.store is not None
    stored = await agent.store.transcript(events[0].run_id)
    assert stored is not None
    assert kinds(stored.segments)[:3] == ["hint", "code", "tool_output"]
    assert events[-1].usage.hints == 1  # type: ignore[union-attr]
