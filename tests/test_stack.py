"""compose.yaml as docker compose reads it: what is published, who gets the engine's socket,
and that the API never starts without a key. (`make stack` runs the stack itself.)"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from startbox.stack import PROJECT, ROOT, api_key, compose_command

SOCKET = "/var/run/docker.sock"


def config(**env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "STARTBOX_API_KEY"} | env
    return subprocess.run(
        [*compose_command(), "-p", PROJECT, "config"],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    done = config(STARTBOX_API_KEY="test-key")
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)["services"]


def test_every_part_of_the_product_is_a_service(services: dict[str, Any]) -> None:
    assert set(services) == {"model", "redis", "api", "worker", "ui"}
    assert services["api"]["environment"]["STARTBOX_API_KEYS"] == "test-key"
    assert services["ui"]["environment"]["STARTBOX_UI_API_KEY"] == "test-key"
    assert {s["environment"]["STARTBOX_MODEL_MODEL"] for s in services.values() if
            "STARTBOX_MODEL_MODEL" in s.get("environment", {})} == {"smollm2-135m"}  # fmt: skip


def test_only_loopback_is_published(services: dict[str, Any]) -> None:
    published = [(name, port) for name, s in services.items() for port in s.get("ports", [])]
    assert {name for name, _ in published} == {"api", "ui", "redis"}
    for _, port in published:  # Compose v1 prints "IP:HOST:CONTAINER", v2 a mapping
        host_ip = port["host_ip"] if isinstance(port, dict) else port.split(":")[0]
        assert host_ip == "127.0.0.1"


def test_only_the_sandbox_owners_get_the_engine(services: dict[str, Any]) -> None:
    def mounts(service: dict[str, Any]) -> list[str]:
        return [v["source"] if isinstance(v, dict) else v.split(":")[0] for v in
                service.get("volumes", [])]  # fmt: skip

    owners = {name for name, s in services.items() if SOCKET in mounts(s)}
    assert owners == {"api", "worker"}


def test_the_api_needs_a_key() -> None:
    done = config()
    assert done.returncode != 0
    assert "set STARTBOX_API_KEY" in done.stderr


def test_a_key_is_made_once_and_kept_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STARTBOX_API_KEY", raising=False)
    key = api_key(tmp_path)
    assert len(key) >= 24 and api_key(tmp_path) == key
    mode = stat.S_IMODE((tmp_path / "stack" / "api-key").stat().st_mode)
    assert mode == 0o600
    monkeypatch.setenv("STARTBOX_API_KEY", "mine")
    assert api_key(tmp_path) == "mine"
