"""Per-run sampling over HTTP: the REST body, the OpenAI facade (its own fields and vLLM's
extras in `extra_body`) and the Agent Protocol's context reach the model's request body."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.agent.api.conftest import KEY, Api, load, sse_events
from tests.agent.api.test_langgraph_sdk import client as sdk_client

TURN = ["<think>\nEasy.</think>", "\n\n\\boxed{42}"]
KNOBS = ("temperature", "top_p", "top_k", "min_p", "presence_penalty", "repetition_penalty")
# the profile's (qwen3; scripted_api_env sets it), as sent when a run chooses nothing
QWEN3 = {"temperature": 0.6, "top_p": 0.95, "top_k": 20, "min_p": 0.0}


def sent(api: Api, question: str) -> list[dict[str, Any]]:
    """The sampling fields of each model request of the run that asked `question` (other
    tests' runs may call the model meanwhile)."""
    bodies = [r for r in api.scripted.requests if question in r.get("prompt", "")]
    assert bodies
    return [{k: body[k] for k in KNOBS if k in body} for body in bodies]


async def test_a_run_request_chooses_its_sampling(api: Api) -> None:
    load(api, *TURN, *TURN)
    async with api.client() as client:
        chosen = {"temperature": 0.0, "top_k": 3, "repetition_penalty": 1.25}
        body = {"question": "Sampled REST 6 * 7?", "sampling": chosen}
        created = await client.post("/v1/runs", json=body)
        assert created.status_code == 201, created.text
        started = (await sse_events(client, created.json()["id"]))[0]["data"]
        plain = await client.post("/v1/runs", json={"question": "Plain REST 6 * 7?"})
        await sse_events(client, plain.json()["id"])
    used = {**QWEN3, **chosen}
    assert sent(api, "Sampled REST") == [used, used]
    assert started["options"]["sampling"] == {**used, "presence_penalty": None}
    assert sent(api, "Plain REST") == [QWEN3, QWEN3]


@pytest.mark.parametrize(
    "sampling",
    [{"temperature": -1}, {"top_p": 0}, {"presence_penalty": 2.5}, {"tempreature": 0.5}],
)
async def test_bad_sampling_in_a_run_request_is_422(api: Api, sampling: dict) -> None:
    async with api.client() as client:
        refused = await client.post("/v1/runs", json={"question": "q", "sampling": sampling})
    assert refused.status_code == 422
    [error] = refused.json()["detail"]
    assert error["loc"] == ["body", "sampling", next(iter(sampling))]


def chat_client(api: Api) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{api.url}/v1", api_key=KEY, timeout=60, max_retries=0)


async def test_the_openai_facade_honours_openai_and_vllm_sampling_fields(api: Api) -> None:
    load(api, *TURN)
    completion = await chat_client(api).chat.completions.create(
        model="startbox/scripted",
        messages=[{"role": "user", "content": "Sampled chat 6 * 7?"}],
        temperature=0.0,
        top_p=0.5,
        presence_penalty=0.25,
        extra_body={"top_k": 4, "min_p": 0.05, "repetition_penalty": 1.1},
    )
    assert completion.choices[0].message.content == "\n\n\\boxed{42}"
    used = {"temperature": 0.0, "top_p": 0.5, "top_k": 4, "min_p": 0.05,
            "presence_penalty": 0.25, "repetition_penalty": 1.1}  # fmt: skip
    assert sent(api, "Sampled chat") == [used, used]
    with pytest.raises(openai.UnprocessableEntityError) as refused:
        await chat_client(api).chat.completions.create(
            model="startbox/scripted",
            messages=[{"role": "user", "content": "q"}],
            temperature=-1,
        )
    assert refused.value.response.json()["detail"][0]["loc"] == ["body", "temperature"]


async def test_agent_protocol_runs_take_sampling_from_their_context(api: Api) -> None:
    sdk = sdk_client(api)
    thread = await sdk.threads.create()
    load(api, *TURN)
    await sdk.runs.wait(
        thread["thread_id"], "startbox",
        input={"messages": [{"role": "user", "content": "Sampled SDK 6 * 7?"}]},
        context={"sampling": {"temperature": 0.0, "min_p": 0.2}},
    )  # fmt: skip
    used = {**QWEN3, "temperature": 0.0, "min_p": 0.2}
    assert sent(api, "Sampled SDK") == [used, used]
    async with httpx.AsyncClient(base_url=api.url, headers={"x-api-key": KEY}) as client:
        refused = await client.post(
            f"/langgraph/threads/{thread['thread_id']}/runs/wait",
            json={"assistant_id": "startbox", "input": {"messages": [{"content": "q"}]},
                  "context": {"sampling": {"temperature": -1}}},
        )  # fmt: skip
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "context", "sampling", "temperature"]
