"""The REST API over real HTTP: runs, SSE with resume, cancel, limits, health, metrics."""

from __future__ import annotations

import asyncio

from model_host.scripted import Reply
from tests.agent.api.conftest import MAX_RUNS, Api, load, sse_events

CODE_RUN = ["<think>\n```python\nprint(6 * 7)\n```\n", "It is 42.</think>", "\n\n\\boxed{42}"]
SLOW_RUN = ["<think>\n```python\nimport time\ntime.sleep(60)\n```\n"]


async def test_keys_are_required(api: Api) -> None:
    async with api.client(key=None) as anonymous:
        response = await anonymous.get("/v1/runs")
        assert response.status_code == 401 and "x-api-key" in response.json()["detail"]
        wrong = await anonymous.get("/v1/runs", headers={"x-api-key": "nope"})
        assert wrong.status_code == 401
        bearer = await anonymous.get("/v1/runs", headers={"Authorization": "Bearer second-key"})
        assert bearer.status_code == 200
        assert (await anonymous.get("/healthz")).json() == {"status": "ok"}


async def test_a_run_streams_its_events_and_is_stored(api: Api) -> None:
    load(api, *CODE_RUN)
    async with api.client() as client:
        created = await client.post("/v1/runs", json={"question": "6 * 7?", "max_tool_calls": 2})
        assert created.status_code == 201
        run_id = created.json()["id"]
        messages = await sse_events(client, run_id)
        assert [int(m["id"]) for m in messages] == list(range(1, len(messages) + 1))
        assert messages[0]["event"] == "run_started" and messages[-1]["event"] == "run_finished"
        assert all(m["event"] == m["data"]["type"] for m in messages)
        execution = next(m["data"] for m in messages if m["event"] == "execution")
        assert execution["stdout"] == "42\n"
        record = (await client.get(f"/v1/runs/{run_id}")).json()
        assert (record["status"], record["answer"]) == ("ok", "42")
        assert record["options"]["max_tool_calls"] == 2
        assert len(record["events"]) == len(messages)
        listed = (await client.get("/v1/runs", params={"limit": 5})).json()["runs"]
        assert run_id in [run["id"] for run in listed]
        resumed = await sse_events(client, run_id, **{"Last-Event-ID": "3"})
        assert [m["id"] for m in resumed] == [m["id"] for m in messages[3:]]


async def test_live_stream_resumes_mid_run(api: Api) -> None:
    load(api, *CODE_RUN)
    async with api.client() as client:
        run_id = (await client.post("/v1/runs", json={"question": "q"})).json()["id"]
        first = await sse_events(client, run_id)
        again = await sse_events(client, run_id, **{"Last-Event-ID": first[-2]["id"]})
        assert [m["event"] for m in again] == ["run_finished"]


async def test_solve_waits_for_the_answer(api: Api) -> None:
    load(api, *CODE_RUN)
    async with api.client() as client:
        response = await client.post("/v1/solve", json={"question": "6 * 7?"})
    body = response.json()
    assert response.status_code == 200
    assert (body["status"], body["answer"], body["usage"]["tool_calls"]) == ("ok", "42", 1)


async def test_cancel_stops_the_run_and_releases_its_sandbox(api: Api) -> None:
    load(api, *SLOW_RUN)
    async with api.client() as client:
        run_id = (await client.post("/v1/runs", json={"question": "slow"})).json()["id"]
        async with client.stream("GET", f"/v1/runs/{run_id}/events") as stream:
            async for line in stream.aiter_lines():
                if line == "event: code":
                    break
        cancelled = await client.post(f"/v1/runs/{run_id}/cancel")
        assert cancelled.status_code == 202
        assert cancelled.json()["status"] == "cancelled"
        record = (await client.get(f"/v1/runs/{run_id}")).json()
        assert record["status"] == "cancelled" and record["events"][-1]["type"] == "run_finished"
        messages = await sse_events(client, run_id)
        assert messages[-1]["data"]["status"] == "cancelled"
        # the sandbox goes right after the last event is out, so a reader may be a moment early
        for _ in range(100):
            metrics = (await client.get("/metrics")).text
            if 'startbox_sandbox_containers{state="in_use"} 0.0' in metrics:
                break
            await asyncio.sleep(0.1)
        assert 'startbox_sandbox_containers{state="in_use"} 0.0' in metrics
        assert (await client.post("/v1/runs/nope/cancel")).status_code == 404


async def test_too_many_runs_get_429_with_retry_after(api: Api) -> None:
    api.scripted.replies = [Reply(text=SLOW_RUN[0]) for _ in range(MAX_RUNS)]
    async with api.client() as client:
        ids = [
            (await client.post("/v1/runs", json={"question": f"slow {i}"})).json()["id"]
            for i in range(MAX_RUNS)
        ]
        refused = await client.post("/v1/runs", json={"question": "one more"})
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
        await asyncio.gather(*(client.post(f"/v1/runs/{i}/cancel") for i in ids))
        load(api, *CODE_RUN)
        assert (await client.post("/v1/runs", json={"question": "now"})).status_code == 201


async def test_bad_input_gets_a_4xx_that_says_what_is_wrong(api: Api) -> None:
    async with api.client() as client:
        cases = {
            "empty": ({"question": ""}, 422),
            "blank": ({"question": "   "}, 400),
            "over cap": ({"question": "q", "thinking_budget": 10**9}, 422),
            "unknown field": ({"question": "q", "temperature": 2}, 422),
            "wrong type": ({"question": ["q"]}, 422),
        }
        for name, (body, code) in cases.items():
            response = await client.post("/v1/runs", json=body)
            assert response.status_code == code, name
            assert response.json()["detail"], name
        over = await client.post("/v1/runs", json={"question": "q", "thinking_budget": 10**9})
        assert "thinking_budget ≤" in over.json()["detail"]
        malformed = await client.post(
            "/v1/runs", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert malformed.status_code == 422
        huge = await client.post("/v1/runs", json={"question": "x" * 100_000})
        assert huge.status_code == 413 and "MAX_BODY_BYTES" in huge.json()["detail"]
        assert (await client.get("/v1/runs/unknown")).status_code == 404
        assert (await client.get("/v1/runs/unknown/events")).status_code == 404
        assert (await client.get("/v1/runs", params={"limit": 0})).status_code == 422


async def test_ready_and_metrics(api: Api) -> None:
    async with api.client() as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"model": "ok", "sandbox": "ok", "store": "ok"}
        metrics = (await client.get("/metrics")).text
    for name in ("startbox_runs_total", "startbox_tool_calls_total", "startbox_tokens_total",
                 "startbox_run_seconds_bucket", "startbox_runs_active"):  # fmt: skip
        assert name in metrics
