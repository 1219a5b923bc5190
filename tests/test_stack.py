"""compose.yaml as docker compose reads it: what is published, who gets the engine's socket,
and that the API never starts without a key. (`make stack` runs the stack itself.)"""

from __future__ import annotations

import os
import stat
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from startbox.stack import (
    NOT_INSTALLED,
    PROJECT,
    ROOT,
    Stack,
    api_key,
    compose_command,
    resolved,
    root_cause,
    wheel_name,
)

SOCKET = "/var/run/docker.sock"


def config(env: dict[str, str] | None = None, **extra: str) -> subprocess.CompletedProcess[str]:
    environment = env or {k: v for k, v in os.environ.items() if k != "STARTBOX_API_KEY"} | extra
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
    assert set(services) == {"model", "redis", "sandbox-image", "api", "worker", "ui"}
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
    assert owners == {"api", "worker", "sandbox-image"}  # the last builds the sandbox image


def test_the_sandbox_image_is_built_before_its_users(services: dict[str, Any]) -> None:
    for user in ("api", "worker"):
        condition = services[user]["depends_on"]["sandbox-image"]["condition"]
        assert condition == "service_completed_successfully"
    assert services["sandbox-image"]["restart"] == "no"


def test_the_ports_of_up_are_the_ports_published(tmp_path: Path) -> None:
    stack = Stack(home=tmp_path, api_port=18001, ui_port=18002, redis_port=18003, tag="t1")
    done = config(stack.env())
    assert done.returncode == 0, done.stderr
    services = yaml.safe_load(done.stdout)["services"]

    def published(name: str) -> str:
        (port,) = services[name]["ports"]
        return str(port["published"] if isinstance(port, dict) else port.split(":")[1])

    assert [published(n) for n in ("api", "ui", "redis")] == ["18001", "18002", "18003"]
    assert {services[n]["image"] for n in ("api", "ui", "model")} == {
        "startbox-app:t1", "startbox-cpu:t1"}  # fmt: skip


# the end of a real crash log of the model container without a C++ compiler (vLLM 0.32)
INDUCTOR_CRASH = """\
(EngineCore_DP0 pid=75)   File "/opt/startbox/lib/python3.11/site-packages/torch/_inductor/cpp_builder.py", line 166, in check_compiler_exist_windows
(EngineCore_DP0 pid=75) torch._inductor.exc.InductorError: InvalidCxxCompiler: No working C++ compiler found in torch._inductor.config.cpp.cxx: (None, 'g++')
(EngineCore_DP0 pid=75)
(APIServer pid=1) Traceback (most recent call last):
(APIServer pid=1)   File "<frozen runpy>", line 198, in _run_module_as_main
(APIServer pid=1) RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}
"""  # noqa: E501


def test_the_root_cause_is_the_first_real_error_not_the_re_raise() -> None:
    assert root_cause(INDUCTOR_CRASH).startswith(
        "torch._inductor.exc.InductorError: InvalidCxxCompiler: No working C++ compiler"
    )
    cli = "preparing\nerror: '/no/such/model' is neither a model directory nor a hub id\n"
    assert root_cause(cli) == "error: '/no/such/model' is neither a model directory nor a hub id"
    assert root_cause("starting\nKilled\n") == "Killed"
    assert root_cause("") == "(it wrote no log)"


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


def wheel(folder: Path, name: str, *requires: str) -> str:
    """A minimal real wheel (metadata only), enough for pip to resolve it."""
    filename = f"{name}-1.0-py3-none-any.whl"
    info = f"{name}-1.0.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requires
    )
    files = {
        f"{info}/METADATA": metadata,
        f"{info}/WHEEL": "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{info}/RECORD": "",
    }
    with zipfile.ZipFile(folder / filename, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return filename


def test_the_app_image_gets_exactly_what_its_requirements_resolve_to(tmp_path: Path) -> None:
    """The host resolves, the build only unpacks: the app's set is pip's pick from the cache
    for app.txt (dependencies included), the model image gets the rest."""
    picked = {wheel(tmp_path, "app_dep", "shared_dep"), wheel(tmp_path, "shared_dep")}
    wheel(tmp_path, "model_only", "shared_dep")
    (tmp_path / "app.txt").write_text("app_dep\n")
    assert resolved(tmp_path, tmp_path / "app.txt", (), lambda _: None) == picked
    assert wheel_name("torch_vision-0.28.0-cp311-cp311-manylinux_2_28_x86_64.whl") == "torch-vision"
    assert {wheel_name(f"{n}-1.0-py3-none-any.whl") for n in NOT_INSTALLED} == NOT_INSTALLED
