"""One hardened container whose pid 1 is the supervisor, spoken to over the Docker attach stream.

The attach socket carries raw JSON lines to the supervisor's stdin and Docker's multiplexed frames
back from its stdout; keeping one attached supervisor alive is what makes a call cost a
millisecond instead of the ~0.4 s of a container start. Replies are checked defensively: a line
over the cap, JSON nested too deep or a reply for another request drops the container.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container

from sandbox.errors import ContainerGone
from sandbox.image import SUPERVISOR_COMMAND
from sandbox.owner import owner_labels
from sandbox.settings import SandboxSettings

FRAME_HEADER = 8
MAX_LINE = 32 * 1024 * 1024  # far above any capped reply: larger means the protocol broke
# the supervisor stays root with just these: to drop to the user, to kill its processes, and
# to lift what it killed back to nice 0 so their exit is not starved (user code runs at 19)
SUPERVISOR_CAPS = ["SETUID", "SETGID", "KILL", "SYS_NICE"]


@dataclass(frozen=True)
class ExitState:
    oom_killed: bool
    exit_code: int | None


def hardened_config(settings: SandboxSettings, pool_id: str = "") -> dict[str, Any]:
    """docker-py `containers.create` arguments: every restriction in one place."""
    uid, _, gid = settings.user.partition(":")
    config: dict[str, Any] = {
        "image": settings.image,
        "command": [*SUPERVISOR_COMMAND, settings.user, settings.preload],
        "stdin_open": True,
        "tty": False,
        "network_mode": "none",
        "cap_drop": ["ALL"],
        "cap_add": SUPERVISOR_CAPS,
        "security_opt": ["no-new-privileges"],
        "read_only": True,
        "tmpfs": {
            "/work": f"rw,nosuid,nodev,noexec,size={settings.tmpfs_size},"
            f"uid={uid},gid={gid or uid},mode=0700",
            "/run/startbox": "rw,nosuid,nodev,noexec,size=16m,mode=0700",  # the supervisor's
        },
        "shm_size": settings.shm_size,
        "working_dir": "/work",
        "user": "0:0",  # the supervisor; user code runs as settings.user
        "mem_limit": settings.memory,
        "memswap_limit": settings.memory,
        "pids_limit": settings.pids,
        "nano_cpus": int(settings.cpus * 1e9),
        "environment": {
            "HOME": "/work",
            "TMPDIR": "/work",
            "LANG": "C.UTF-8",
            "MPLBACKEND": "Agg",
            "OPENBLAS_NUM_THREADS": "1",  # one core per container; no BLAS threads to fork
            "OMP_NUM_THREADS": "1",
        },
        "hostname": "sandbox",
        "labels": owner_labels(pool_id),
    }
    if settings.runtime:
        config["runtime"] = settings.runtime
    return config


class SandboxContainer:
    def __init__(self, container: Container, sock: socket.socket) -> None:
        self.container = container
        self._sock = sock
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._buffer = bytearray()
        self._next_id = 0
        self._lock = asyncio.Lock()
        self.info: dict[str, Any] = {}
        self.tenant: str | None = None

    @property
    def id(self) -> str:
        return self.container.id or ""

    @classmethod
    async def start(
        cls, client: docker.DockerClient, settings: SandboxSettings, pool_id: str = ""
    ) -> SandboxContainer:
        """Create, attach, start and wait until the supervisor has pre-imported its libraries."""
        config = hardened_config(settings, pool_id)
        creating = asyncio.ensure_future(asyncio.to_thread(client.containers.create, **config))
        try:
            container = await asyncio.shield(creating)
        except asyncio.CancelledError:  # the engine creates it anyway: remove it once it exists
            with contextlib.suppress(Exception):
                await destroy(await creating)
            raise
        try:
            sock = await asyncio.to_thread(_attach, client, container)
            self = cls(container, sock)
            self._reader, self._writer = await asyncio.open_connection(sock=sock)
            await asyncio.to_thread(container.start)
            self.info = await asyncio.wait_for(self.call({"op": "ping"}), settings.start_timeout)
        except BaseException:
            await asyncio.shield(destroy(container))
            raise
        return self

    async def call(self, request: dict[str, Any]) -> dict[str, Any]:
        """Send one request and wait for its reply. Cancel it (e.g. by a timeout) and the
        stream is out of step, so the caller must destroy the container."""
        assert self._writer is not None
        async with self._lock:
            self._next_id += 1
            request = {**request, "id": self._next_id}
            try:
                self._writer.write(json.dumps(request).encode() + b"\n")
                await self._writer.drain()
                line = await self._read_line()
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                raise ContainerGone(str(exc) or type(exc).__name__) from exc
            return decode_reply(line, self._next_id)

    async def _read_line(self) -> bytes:
        assert self._reader is not None
        while (end := self._buffer.find(b"\n")) < 0:
            header = await self._reader.readexactly(FRAME_HEADER)
            payload = await self._reader.readexactly(int.from_bytes(header[4:], "big"))
            if header[0] == 1:  # stdout; the supervisor never writes protocol to stderr
                self._buffer += payload
            if len(self._buffer) > MAX_LINE:
                raise ConnectionError("reply exceeds the protocol's line limit")
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        return line

    async def exit_state(self, wait: float = 5.0) -> ExitState:
        """Why the container stopped: OOM kill, or an exit code."""
        deadline = time.monotonic() + wait
        while True:
            try:
                await asyncio.to_thread(self.container.reload)
            except docker.errors.NotFound:
                return ExitState(oom_killed=False, exit_code=None)
            state = self.container.attrs["State"]
            if not state.get("Running") or time.monotonic() > deadline:
                return ExitState(bool(state.get("OOMKilled")), state.get("ExitCode"))
            await asyncio.sleep(0.05)

    async def destroy(self) -> None:
        if self._writer is not None:
            self._writer.close()
        await destroy(self.container)


def decode_reply(line: bytes, expected_id: int) -> dict[str, Any]:
    """One reply line as a dict for request `expected_id`, or `ContainerGone` saying why not."""
    try:
        reply = json.loads(line)
    except ValueError as exc:
        raise ContainerGone(f"the reply was not JSON ({exc})") from exc
    except RecursionError as exc:
        raise ContainerGone("the reply was nested too deeply") from exc
    if not isinstance(reply, dict) or reply.get("id") != expected_id:
        raise ContainerGone("the supervisor's reply did not match the request")
    return reply


def _attach(client: docker.DockerClient, container: Container) -> socket.socket:
    """A duplicate of the hijacked attach socket, so asyncio owns it outright."""
    raw = client.api.attach_socket(container.id, params={"stdin": 1, "stdout": 1, "stream": 1})
    inner: socket.socket = getattr(raw, "_sock", raw)
    sock = socket.socket(inner.family, inner.type, inner.proto, fileno=os.dup(inner.fileno()))
    sock.setblocking(False)
    raw.close()
    return sock


async def destroy(container: Container, attempts: int = 3) -> None:
    """Kill and remove; a container that is already gone is fine. Under load the engine can
    fail a forced removal (it missed the kill's exit event), so it is tried again."""
    for attempt in range(1, attempts + 1):
        try:
            await asyncio.to_thread(container.remove, force=True)
            return
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            if "already in progress" in str(exc):
                return
            if attempt == attempts:
                raise
        await asyncio.sleep(0.5 * attempt)
