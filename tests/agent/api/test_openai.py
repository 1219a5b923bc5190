"""The OpenAI-compatible facade, driven by the official `openai` client."""

from __future__ import annotations

import openai
import pytest

from model_host.scripted import Reply
from tests.agent.api.conftest import KEY, Api

TURNS = [
    "<think>\n```python\nprint(2 ** 10)\n```\n",
    "So 1024.</think>",
    "\n\nIt is \\boxed{1024}.",
]


def client(api: Api) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{api.url}/v1", api_key=KEY, timeout=60, max_retries=0)


async def test_models_lists_the_agent(api: Api) -> None:
    models = await client(api).models.list()
    assert [m.id for m in models.data] == ["startbox/scripted"]


async def test_chat_completion_returns_answer_and_reasoning(api: Api) -> None:
    api.scripted.replies = [Reply(text=t) for t in TURNS]
    completion = await client(api).chat.completions.create(
        model="startbox/scripted",
        messages=[{"role": "user", "content": "What is 2**10?"}],
        extra_body={"max_tool_calls": 2},
    )
    message = completion.choices[0].message
    assert message.content == "\n\nIt is \\boxed{1024}."
    reasoning = message.model_extra["reasoning_content"]  # type: ignore[index]
    assert "print(2 ** 10)" in reasoning and "```output\n1024\n```" in reasoning
    assert completion.usage is not None and completion.usage.completion_tokens > 0


async def test_streaming_chunks_carry_reasoning_then_content(api: Api) -> None:
    api.scripted.replies = [Reply(text=t) for t in TURNS]
    stream = await client(api).chat.completions.create(
        model="startbox/scripted",
        messages=[{"role": "user", "content": "What is 2**10?"}],
        stream=True,
    )
    reasoning, content, finish = "", "", None
    async for chunk in stream:
        delta = chunk.choices[0].delta
        reasoning += (delta.model_extra or {}).get("reasoning_content") or ""
        content += delta.content or ""
        finish = chunk.choices[0].finish_reason or finish
    assert "```output\n1024\n```" in reasoning
    assert content == "\n\nIt is \\boxed{1024}." and finish == "stop"


async def test_bad_requests_are_4xx(api: Api) -> None:
    with pytest.raises(openai.UnprocessableEntityError):
        await client(api).chat.completions.create(model="startbox/scripted", messages=[])
    with pytest.raises(openai.AuthenticationError):
        await openai.AsyncOpenAI(base_url=f"{api.url}/v1", api_key="bad").models.list()
