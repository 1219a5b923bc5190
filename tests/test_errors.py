"""Every expected error ends a command in one line and a non-zero exit; --debug shows more."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from pathlib import Path

import pytest

from tests.ports import free_port

STARTBOX = str(Path(sys.executable).with_name("startbox"))


async def startbox(*args: str, wait: float = 120, **env: str) -> tuple[int, str, str]:
    """The CLI in STARTBOX_HOME (a test's tmp_path), so files it writes (`--out`) land there."""
    process = await asyncio.create_subprocess_exec(
        STARTBOX, *args, env={**os.environ, "COLUMNS": "300", **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        cwd=env.get("STARTBOX_HOME"),
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), wait)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def one_line(code: int, out: str, err: str) -> str:
    assert code == 1, (out, err)
    assert "Traceback" not in out + err, err
    lines = err.strip().splitlines()  # progress lines may come first; the error ends it
    assert lines[-1].startswith("error: "), err
    assert sum(line.startswith("error") for line in lines) == 1, err
    return lines[-1]


@pytest.mark.parametrize("command", [["demo"], ["api", "--port", str(free_port())]])
async def test_an_invalid_setting_is_one_line(command: list[str], tmp_path: Path) -> None:
    code, out, err = await startbox(
        *command, STARTBOX_AGENT_THINKING_BUDGET="lots", STARTBOX_API_OPEN="1",
        STARTBOX_HOME=str(tmp_path),
    )  # fmt: skip
    line = one_line(code, out, err)
    assert "STARTBOX_AGENT_THINKING_BUDGET='lots'" in line and "valid integer" in line


async def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    for args, debug in ((["--debug", "demo"], "0"), (["demo"], "1")):  # the flag, the env twin
        code, _out, err = await startbox(
            *args, STARTBOX_DEBUG=debug, STARTBOX_AGENT_THINKING_BUDGET="lots",
            STARTBOX_HOME=str(tmp_path),
        )  # fmt: skip
        assert code != 0 and "ValidationError" in err and "thinking_budget" in err, err
        assert len(err.splitlines()) > 1


@pytest.mark.parametrize(
    "command", [["solve", "1+1?"], ["batch", "run", "sample", "--out", "x.jsonl", "--limit", "1"]]
)
async def test_a_hub_model_offline_is_one_line(command: list[str], tmp_path: Path) -> None:
    code, out, err = await startbox(
        *command, "--model", "Qwen/Qwen3-8B", HF_HUB_OFFLINE="1", STARTBOX_HOME=str(tmp_path),
        STARTBOX_AGENT_PERSIST="false",
    )  # fmt: skip
    line = one_line(code, out, err)
    assert "Qwen/Qwen3-8B is not in the local Hugging Face cache" in line
    assert "--model smollm2-135m" in line


async def test_api_on_a_busy_port_fails_before_starting_anything(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        started = time.monotonic()
        code, out, err = await startbox(
            "api", "--port", str(port), STARTBOX_API_OPEN="1", STARTBOX_HOME=str(tmp_path)
        )
    line = one_line(code, out, err)
    assert f"cannot serve on 127.0.0.1:{port}" in line and "--port" in line
    assert time.monotonic() - started < 30  # the embedded vLLM (~45 s and more) never started
    assert not (tmp_path / "vllm").exists()
