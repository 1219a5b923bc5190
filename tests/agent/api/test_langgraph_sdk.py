"""The Agent Protocol subset, driven by LangGraph's own client (langgraph-sdk)."""

from __future__ import annotations

from langgraph_sdk import get_client

from tests.agent.api.conftest import KEY, OTHER_KEY, Api, load

TURN = [
    "<think>\n```python\nn = 6 * 7\nprint(n)\n```\n",
    "So 42.</think>",
    "\n\nIt is \\boxed{42}.",
]
AGAIN = ["<think>\n```python\nprint(n + 1)\n```\n", "43.</think>", "\n\n\\boxed{43}"]


def client(api: Api, key: str = KEY):
    return get_client(url=f"{api.url}/langgraph", api_key=key)


async def test_assistants_threads_and_a_waited_run(api: Api) -> None:
    sdk = client(api)
    assistants = await sdk.assistants.search()
    assert [a["graph_id"] for a in assistants] == ["startbox"]
    assistant = await sdk.assistants.get(assistants[0]["assistant_id"])
    thread = await sdk.threads.create(metadata={"title": "sdk"})
    load(api, *TURN)
    values = await sdk.runs.wait(
        thread["thread_id"],
        assistant["assistant_id"],
        input={"messages": [{"role": "user", "content": "What is 6 * 7?"}]},
    )
    assert [m["type"] for m in values["messages"]] == ["human", "ai"]
    assert values["messages"][-1]["content"] == "It is \\boxed{42}."
    state = await sdk.threads.get_state(thread["thread_id"])
    assert state["values"] == values and state["checkpoint"]["checkpoint_id"]
    assert state["metadata"]["run_id"] == values["messages"][-1]["id"]  # checkpoint of the turn
    found = await sdk.threads.search(limit=50)
    assert thread["thread_id"] in [t["thread_id"] for t in found]
    assert (await sdk.threads.get(thread["thread_id"]))["status"] == "idle"
    others = await client(api, OTHER_KEY).threads.search(limit=50)
    assert thread["thread_id"] not in [t["thread_id"] for t in others]


async def test_stream_modes_and_a_background_run_joined(api: Api) -> None:
    sdk = client(api)
    thread = await sdk.threads.create()
    load(api, *TURN)
    parts = [
        part
        async for part in sdk.runs.stream(
            thread["thread_id"],
            "startbox",
            input={"messages": [{"role": "user", "content": "6 * 7?"}]},
            stream_mode=["values", "updates", "custom"],
        )
    ]
    events = [p.event for p in parts]
    assert events[0] == "metadata" and events[-1] == "end"
    values = [p.data for p in parts if p.event == "values"]
    assert [m["type"] for m in values[0]["messages"]] == ["human"]
    assert values[-1]["messages"][-1]["type"] == "ai"
    updates = [p.data for p in parts if p.event == "updates"]
    assert updates[0]["execute"]["output"] == "42" and "finalize" in updates[-1]
    custom = [p.data["type"] for p in parts if p.event == "custom"]
    assert custom[0] == "run_started" and custom[-1] == "run_finished"

    load(api, *AGAIN)  # a background run on the same thread: its kernel still holds n
    run = await sdk.runs.create(
        thread["thread_id"], "startbox", input={"messages": [{"role": "user", "content": "n+1"}]}
    )
    joined = await sdk.runs.join(thread["thread_id"], run["run_id"])
    assert joined["messages"][-1]["content"] == "\\boxed{43}"
    assert len(joined["messages"]) == 4
    assert (await sdk.runs.get(thread["thread_id"], run["run_id"]))["status"] == "success"


async def test_stateless_runs_get_a_thread_of_their_own(api: Api) -> None:
    sdk = client(api)
    question = {"messages": [{"role": "user", "content": "6 * 7?"}]}
    load(api, *TURN)
    values = await sdk.runs.wait(None, "startbox", input=question)
    assert isinstance(values, dict)
    assert [m["type"] for m in values["messages"]] == ["human", "ai"]
    load(api, *TURN)
    parts = [p async for p in sdk.runs.stream(None, "startbox", input=question)]
    streamed = [p.data["messages"] for p in parts if p.event == "values"]
    assert [[m["type"] for m in v] for v in streamed] == [["human"], ["human", "ai"]]
    # a thread id in the query is no way into a thread: the stateless route makes its own
    existing = await sdk.threads.create()
    load(api, *TURN)
    async with api.client() as http:
        body = {"assistant_id": "startbox", "input": question}
        done = await http.post(f"/langgraph/runs/wait?thread_id={existing['thread_id']}", json=body)
    assert done.status_code == 200 and len(done.json()["messages"]) == 2
    assert (await sdk.threads.get(existing["thread_id"]))["values"]["messages"] == []
