"""`startbox model serve` failure modes: each ends quickly with a clear message, never a hang."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from model_host.server import ServerRecord, port_in_use, record_path
from model_host.settings import ModelSettings
from startbox.cli import app
from tests.model_host.fixtures import free_port, startbox_cli

runner = CliRunner()


def _serve(*args: str, home: Path) -> tuple[int, str]:
    result = runner.invoke(app, ["model", "serve", *args], env={"STARTBOX_HOME": str(home)})
    return result.exit_code, result.output


def test_dry_run_prints_the_exact_cpu_command(tmp_path: Path) -> None:
    code, output = _serve("--dry-run", "--device", "cpu", "--port", "8123", home=tmp_path)
    assert code == 0, output
    command = " ".join(output.split())
    assert "-m vllm.entrypoints.openai.api_server" in command
    assert "--enable-prefix-caching" in command
    assert "--port 8123" in command and "--host 127.0.0.1" in command
    assert "--served-model-name smollm2-135m" in command
    assert "VLLM_CPU_KVCACHE_SPACE=2" in command and "VLLM_NO_USAGE_STATS=1" in command
    assert "VLLM_USE_AOT_COMPILE=0" in command
    assert "--reasoning-parser" not in command and "--gpu-memory-utilization" not in command
    assert "--enforce-eager" not in command  # compiled unless asked otherwise


def test_no_compile_starts_vllm_eager(tmp_path: Path) -> None:
    code, output = _serve("--dry-run", "--device", "cpu", "--no-compile", home=tmp_path)
    assert code == 0, output
    assert "--enforce-eager" in output
    assert "--block-size" not in output  # vLLM's own unless asked


def test_a_block_size_is_passed_to_vllm(tmp_path: Path) -> None:
    code, output = _serve("--dry-run", "--device", "cpu", "--block-size", "32", home=tmp_path)
    assert code == 0, output
    assert "--block-size 32" in " ".join(output.split())


def test_dry_run_adds_the_family_reasoning_parser_when_asked(tmp_path: Path) -> None:
    code, output = _serve(
        "--dry-run", "--device", "gpu", "--model", "Qwen/Qwen3-8B", "--reasoning-parser",
        "--no-prefix-caching", "--max-model-len", "32768", home=tmp_path,
    )  # fmt: skip
    assert code == 0, output
    command = " ".join(output.split())
    assert "--reasoning-parser qwen3" in command
    assert "--no-enable-prefix-caching" in command
    assert "--max-model-len 32768" in command
    assert "--gpu-memory-utilization 0.9" in command
    assert "--served-model-name Qwen3-8B" in command


def test_env_twins_configure_serve(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["model", "serve", "--dry-run"],
        env={"STARTBOX_HOME": str(tmp_path), "STARTBOX_MODEL_PORT": "8124",
             "STARTBOX_MODEL_DEVICE": "cpu", "STARTBOX_MODEL_SERVED_NAME": "tiny"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "--port 8124" in result.output and "--served-model-name tiny" in result.output


def test_a_port_in_use_is_refused_before_starting(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, output = _serve("--port", str(port), "--device", "cpu", home=tmp_path)
    assert code == 1
    assert "already in use" in output and "--port" in output


@pytest.mark.timeout(600)
def test_a_model_that_fails_to_load_ends_with_the_vllm_log(tmp_path: Path) -> None:
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"model_type": "no-such-architecture"}))
    (broken / "tokenizer_config.json").write_text("{}")
    port = free_port()
    done = subprocess.run(
        [*startbox_cli(), "model", "serve", "--model", str(broken), "--port", str(port),
         "--startup-timeout", "500"],
        env={**os.environ, "STARTBOX_HOME": str(tmp_path)},
        capture_output=True, text=True, timeout=560,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "exited with code" in done.stderr
    assert "no-such-architecture" in done.stderr, "the tail of vLLM's log is missing"
    assert (tmp_path / "logs" / f"vllm-{port}.log").is_file()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.timeout(900)
def test_a_killed_serve_takes_its_vllm_with_it(model_dir: Path) -> None:
    """kill -9 of a serving `startbox model serve` ends its vLLM too (engine core included),
    which would otherwise hold the port and the memory with nobody to stop it."""
    settings = ModelSettings(port=free_port())  # the user's home, where the model is prepared
    url = f"http://127.0.0.1:{settings.port}"
    cli = subprocess.Popen(
        [*startbox_cli(), "model", "serve", "--port", str(settings.port), "--no-compile"],
        env={**os.environ, "STARTBOX_MODEL_CPU_KV_CACHE_GIB": "1"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    pid = None
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            assert cli.poll() is None, "`startbox model serve` ended before vLLM was ready"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/v1/models", timeout=5).status_code == 200:
                    break
            time.sleep(2)
        else:
            pytest.fail("vLLM was not ready after 600 s")
        record = record_path(settings.home, settings.port).read_text()
        pid = ServerRecord.model_validate_json(record).pid
        cli.kill()
        cli.wait(timeout=10)
        deadline = time.monotonic() + 120
        while _group_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not _group_alive(pid), "vLLM outlived the `startbox model serve` that started it"
        assert not port_in_use("127.0.0.1", settings.port)
    finally:
        cli.kill()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        record_path(settings.home, settings.port).unlink(missing_ok=True)
