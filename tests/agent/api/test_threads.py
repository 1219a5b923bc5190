"""Threads over real HTTP on a real sandbox: the kernel lives across turns, an idle one is
released and rebuilt by replay, a fork replays its turns, thinking switches per turn."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from tests.agent.api.conftest import (
    KERNEL_TTL,
    Api,
    first_prompt,
    load,
    of_type,
    outputs,
    running_api,
    sse_events,
    turn,
)


def cell(code: str, answer: str) -> list[str]:
    """One turn: think, run `code`, answer."""
    return [
        f"<think>\nsecret reasoning\n```python\n{code}\n```\n",
        "Done.</think>",
        f"\n\n{answer}",
    ]


async def test_a_variable_lives_across_three_turns(api: Api) -> None:
    async with api.client() as client:
        tid = (await client.post("/v1/threads", json={"title": "counting"})).json()["id"]
        load(api, *cell("x = 41", "x is \\boxed{41}"))
        first = await turn(client, tid, "Set x to 41.")
        load(api, *cell("x += 1", "now \\boxed{42}"))
        await turn(client, tid, "Add one.")
        load(api, *cell("print(x)", "x is \\boxed{42}"))
        third = await turn(client, tid, "Print x.")
        assert outputs(third) == ["42\n"]
        assert not of_type(first + third, "kernel_restored")  # the kernel stayed live
        prompt = first_prompt(api, "Print x.")
        assert "Set x to 41." in prompt and "Add one." in prompt and "now \\boxed{42}" in prompt
        assert "secret reasoning" not in prompt  # earlier reasoning is not carried
        thread = (await client.get(f"/v1/threads/{tid}")).json()
        assert [(t["index"], t["status"], t["answer"]) for t in thread["turns"]] == [
            (1, "ok", "41"),
            (2, "ok", "42"),
            (3, "ok", "42"),
        ]
        listed = (await client.get("/v1/threads")).json()["threads"]
        assert {"id": tid, "title": "counting", "turns": 3}.items() <= listed[0].items()


async def test_an_idle_kernel_is_released_and_rebuilt_by_replay(api: Api) -> None:
    async with api.client() as client:
        tid = (await client.post("/v1/threads", json={})).json()["id"]
        load(api, *cell("import math\nx = math.factorial(5)", "\\boxed{120}"))
        await turn(client, tid, "x = 5!")
        load(api, *cell("boom = 1\nraise ValueError('not replayed')", "\\boxed{0}"))
        await turn(client, tid, "fail once")
        await asyncio.sleep(KERNEL_TTL + 2.5)  # the reaper releases the idle kernel
        load(api, *cell("print(x, 'boom' in dir())", "\\boxed{120}"))
        events = await turn(client, tid, "Print x.")
        assert [e["cells"] for e in of_type(events, "kernel_restored")] == [1]
        assert outputs(events) == ["120 False\n"]  # the failed cell was not replayed
        order = [e["type"] for e in events]
        assert order.index("kernel_restored") < order.index("code")


async def test_a_replay_that_fails_says_kernel_lost(api: Api) -> None:
    async with api.client() as client:
        tid = (await client.post("/v1/threads", json={})).json()["id"]
        load(api, *cell("base = 1\nraise ValueError('half done')", "\\boxed{0}"))
        await turn(client, tid, "half")
        load(api, *cell("y = base + 1", "\\boxed{2}"))  # ok only because `base` leaked
        await turn(client, tid, "use it")
        await asyncio.sleep(KERNEL_TTL + 2.5)
        load(api, *cell("print('fresh')", "\\boxed{1}"))
        events = await turn(client, tid, "again")
        lost = of_type(events, "kernel_lost")
        assert len(lost) == 1 and "NameError" in lost[0]["reason"]
        assert outputs(events) == ["fresh\n"]


async def test_a_fork_keeps_its_turns_and_replays_only_them(api: Api) -> None:
    async with api.client() as client:
        tid = (await client.post("/v1/threads", json={"title": "base"})).json()["id"]
        load(api, *cell("a = 1", "\\boxed{1}"))
        await turn(client, tid, "a = 1")
        load(api, *cell("a = 2", "\\boxed{2}"))
        await turn(client, tid, "a = 2")
        fork = await client.post(f"/v1/threads/{tid}/fork", json={"turn": 1})
        assert fork.status_code == 201
        forked = fork.json()
        assert [t["question"] for t in forked["turns"]] == ["a = 1"]
        load(api, *cell("print(a)", "\\boxed{1}"))
        events = await turn(client, forked["id"], "print a")
        assert [e["cells"] for e in of_type(events, "kernel_restored")] == [1]
        assert outputs(events) == ["1\n"]
        too_far = await client.post(f"/v1/threads/{tid}/fork", json={"turn": 9})
        assert too_far.status_code == 422
        load(api, *cell("import time\ntime.sleep(2)", "\\boxed{0}"))
        running = await client.post(f"/v1/threads/{tid}/runs", json={"question": "sleep"})
        busy = await client.post(f"/v1/threads/{tid}/fork", json={"turn": 3})
        assert busy.status_code == 409 and "still running" in busy.json()["detail"], busy.text
        gone = await client.delete(f"/v1/threads/{tid}")
        assert gone.status_code == 409 and "/cancel" in gone.json()["detail"], gone.text
        await sse_events(client, running.json()["id"])  # it ends before the thread goes
        assert (await client.delete(f"/v1/threads/{tid}")).status_code == 204
        assert (await client.get(f"/v1/threads/{tid}")).status_code == 404


async def test_thinking_switches_off_per_turn(api: Api) -> None:
    async with api.client() as client:
        tid = (await client.post("/v1/threads", json={})).json()["id"]
        load(api, "Plain answer \\boxed{3}")
        events = await turn(client, tid, "1 + 2?", thinking=False)
        started = events[0]
        assert started["thinking"] is False and started["notes"] == []
        assert first_prompt(api, "1 + 2?").endswith("<think>\n\n</think>\n\n")
        assert {e["phase"] for e in of_type(events, "thinking_delta")} == {"answer"}
        assert events[-1]["usage"]["thinking_tokens"] == 0
        load(api, "Plain \\boxed{4}")
        events = await turn(client, tid, "2 + 2? /no_think")  # Qwen3's soft switch
        assert events[0]["thinking"] is False
        thread = (await client.get(f"/v1/threads/{tid}")).json()
        assert [t["thinking"] for t in thread["turns"]] == [False, None]


async def test_a_killed_api_rebuilds_the_kernel_on_restart(api: Api, tmp_path: Path) -> None:
    async with running_api(api.scripted, tmp_path) as first, first.client() as client:
        tid = (await client.post("/v1/threads", json={})).json()["id"]
        load(api, *cell("secret = 'kept'", "\\boxed{kept}"))
        await turn(client, tid, "remember")
        await asyncio.sleep(0.5)  # the store writes within 0.1 s (store.FLUSH_DELAY)
        first.process.send_signal(signal.SIGKILL)
        await first.process.wait()
    async with running_api(api.scripted, tmp_path) as second, second.client() as client:
        load(api, *cell("print(secret)", "\\boxed{kept}"))
        events = await turn(client, tid, "recall")
        assert [e["cells"] for e in of_type(events, "kernel_restored")] == [1]
        assert outputs(events) == ["kept\n"]
