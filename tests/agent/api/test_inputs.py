"""Input that needs no valid key never makes a 500 or a traceback (issue 11), and a store that
cannot keep runs refuses them up front."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path

import httpx
import pytest

from tests.agent.api.conftest import Api, running_api, startbox
from tests.ports import free_port, scripted_api_env


async def test_a_non_ascii_key_is_a_401(api: Api) -> None:
    async with httpx.AsyncClient(base_url=api.url) as client:
        for raw in ("ключ".encode(), b"\xff\xfe", "tést-key".encode("latin-1")):
            response = await client.get("/v1/runs", headers={b"x-api-key": raw})
            assert response.status_code == 401, raw
            response = await client.get("/v1/runs", headers={b"authorization": b"Bearer " + raw})
            assert response.status_code == 401, raw
    assert "Traceback" not in api.log.read_text()


@pytest.mark.parametrize(
    "body",
    [
        b'{"question": "q", "timeout": NaN}',
        b'{"question": "q", "timeout": Infinity}',
        b'{"question": "q", "seed": -Infinity}',
        b'{"question": NaN}',
        b'{"question": "\\ud800 lone"}',
        b'{"question": "q", "\\udfff": 1}',
    ],
)
async def test_non_json_numbers_and_lone_surrogates_are_a_422(api: Api, body: bytes) -> None:
    async with api.client() as client:
        for path in ("/v1/runs", "/v1/threads", "/v1/solve"):
            response = await client.post(
                path, content=body, headers={"content-type": "application/json"}
            )
            assert response.status_code == 422, (path, response.text)
            assert json.loads(response.text)["detail"]  # the body serializes
        chat = body.replace(b'"question"', b'"model": "m", "messages": [{"role": "user", "content"')
        chat = chat.rstrip(b"}") + b"}]}"
        response = await client.post(
            "/v1/chat/completions", content=chat, headers={"content-type": "application/json"}
        )
        assert 400 <= response.status_code < 500, response.text
    assert "Traceback" not in api.log.read_text()


async def test_an_unopenable_store_fails_at_once_in_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the store's directory should be")
    store = blocker / "runs.db"
    env = {
        **scripted_api_env("http://127.0.0.1:9", tmp_path, free_port(), keys="k"),
        "STARTBOX_AGENT_STORE_PATH": str(store),
    }
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        startbox(), "api", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    assert time.monotonic() - started < 30
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and str(store) in lines[0] and "STARTBOX_AGENT_STORE_PATH" in lines[0]
    assert "Traceback" not in err.decode() + out.decode()


async def test_a_deleted_store_is_reported_and_runs_are_refused(tmp_path: Path, api: Api) -> None:
    workdir = tmp_path / "store"
    workdir.mkdir()
    async with running_api(api.scripted, workdir) as doomed, doomed.client() as client:
        assert (await client.get("/readyz")).json()["store"] == "ok"
        shutil.rmtree(workdir)
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and "is missing" in ready.json()["store"]
        refused = await client.post("/v1/runs", json={"question": "lost?"})
        assert refused.status_code == 503 and "runs are refused" in refused.json()["detail"]
        assert (await client.post("/v1/solve", json={"question": "q"})).status_code == 503
        workdir.mkdir()  # the log's directory, for the fixture's exit
