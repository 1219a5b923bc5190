"""The OpenAI-compatible facade, driven by the official `openai` client."""

from __future__ import annotations

import openai
import pytest

from model_host.scripted import Reply
from tests.agent.api.conftest import KEY, Api, first_prompt

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


async def test_the_whole_message_list_is_honoured(api: Api) -> None:
    api.scripted.replies = [Reply(text=t) for t in TURNS]
    completion = await client(api).chat.completions.create(
        model="startbox/scripted",
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Call the number k."},
            {"role": "assistant", "content": "Fine, k it is."},
            {"role": "user", "content": [{"type": "text", "text": "And 2**10, tersely?"}]},
        ],
    )
    prompt = first_prompt(api, "And 2**10, tersely?")
    for text in ("You are terse.", "Call the number k.", "Fine, k it is."):
        assert text in prompt
    assert prompt.index("Call the number k.") < prompt.index("And 2**10, tersely?")
    assert completion.choices[0].message.content == "\n\nIt is \\boxed{1024}."


async def test_max_tokens_bounds_thinking_and_answer(api: Api) -> None:
    long = "<think>\n" + " ".join(f"w{i}" for i in range(400))
    api.scripted.replies = [Reply(text=long), Reply(text=" ".join(["a"] * 300))]
    completion = await client(api).chat.completions.create(
        model="startbox/scripted",
        messages=[{"role": "user", "content": "Think long."}],
        max_tokens=40,
    )
    usage = completion.usage
    assert usage is not None and usage.completion_tokens <= 40
    details = usage.completion_tokens_details
    assert details is not None and details.reasoning_tokens is not None
    assert 0 < details.reasoning_tokens < usage.completion_tokens
    assert completion.choices[0].finish_reason == "length"


async def test_thinking_off_and_a_thread_bound_kernel(api: Api) -> None:
    async with api.client() as http:
        tid = (await http.post("/v1/threads", json={"title": "chat"})).json()["id"]
    chat = client(api)
    api.scripted.replies = [Reply(text="```python\nz = 9\n```\n"), Reply(text="\\boxed{9}")]
    await chat.chat.completions.create(
        model="startbox/scripted",
        messages=[{"role": "user", "content": "z = 9"}],
        reasoning_effort="none",
        extra_body={"thread_id": tid},
    )
    assert first_prompt(api, "z = 9").endswith("<think>\n\n</think>\n\n")
    api.scripted.replies = [Reply(text="```python\nprint(z)\n```\n"), Reply(text="\\boxed{9}")]
    completion = await chat.chat.completions.create(
        model="startbox/scripted",
        messages=[
            {"role": "user", "content": "z = 9"},
            {"role": "assistant", "content": "\\boxed{9}"},
            {"role": "user", "content": "print z"},
        ],
        extra_body={"thread_id": tid, "chat_template_kwargs": {"enable_thinking": False}},
    )
    trace = completion.choices[0].message.model_extra["reasoning_content"]  # type: ignore[index]
    assert "```output\n9\n```" in trace  # z from the first chat, in the thread's kernel
