"""Runs and threads belong to the key that made them: others get 404 and list only their own;
an admin key sees all. Over real HTTP, against a real `startbox api`."""

from __future__ import annotations

from tests.agent.api.conftest import ADMIN_KEY, OTHER_KEY, Api, load, sse_events

ANSWER = ["<think>\nquick</think>", "\n\n\\boxed{1}"]


async def test_another_key_sees_nothing_of_a_run(api: Api) -> None:
    load(api, *ANSWER)
    async with api.client() as owner, api.client(OTHER_KEY) as other:
        run_id = (await owner.post("/v1/runs", json={"question": "mine"})).json()["id"]
        await sse_events(owner, run_id)
        for path in (f"/v1/runs/{run_id}", f"/v1/runs/{run_id}/events"):
            response = await other.get(path)
            assert response.status_code == 404, path
            assert response.json()["detail"] == f"no run with id {run_id!r}"
        assert (await other.post(f"/v1/runs/{run_id}/cancel")).status_code == 404
        theirs = [r["id"] for r in (await other.get("/v1/runs?limit=500")).json()["runs"]]
        mine = [r["id"] for r in (await owner.get("/v1/runs?limit=500")).json()["runs"]]
        assert run_id in mine and run_id not in theirs
        record = (await owner.get(f"/v1/runs/{run_id}")).json()
        assert "owner" not in record  # the key's hash stays inside


async def test_another_key_sees_nothing_of_a_thread(api: Api) -> None:
    async with api.client() as owner, api.client(OTHER_KEY) as other:
        thread = (await owner.post("/v1/threads", json={"title": "private"})).json()
        tid = thread["id"]
        assert (await other.get(f"/v1/threads/{tid}")).status_code == 404
        assert (await other.delete(f"/v1/threads/{tid}")).status_code == 404
        turn = await other.post(f"/v1/threads/{tid}/runs", json={"question": "q"})
        assert turn.status_code == 404
        assert (await other.post(f"/v1/threads/{tid}/fork", json={"turn": 1})).status_code == 404
        listed = (await other.get("/v1/threads?limit=500")).json()["threads"]
        assert tid not in [t["id"] for t in listed]
        assert tid in [t["id"] for t in (await owner.get("/v1/threads")).json()["threads"]]


async def test_an_admin_key_sees_every_keys_work(api: Api) -> None:
    load(api, *ANSWER)
    async with api.client() as owner, api.client(ADMIN_KEY) as admin:
        run_id = (await owner.post("/v1/runs", json={"question": "seen"})).json()["id"]
        tid = (await owner.post("/v1/threads", json={})).json()["id"]
        assert (await admin.get(f"/v1/runs/{run_id}")).status_code == 200
        assert run_id in [r["id"] for r in (await admin.get("/v1/runs")).json()["runs"]]
        assert (await admin.get(f"/v1/threads/{tid}")).status_code == 200
        assert tid in [t["id"] for t in (await admin.get("/v1/threads")).json()["threads"]]
        await sse_events(owner, run_id)
