"""One hardened container running the runner, spoken to over the Docker attach stream.

The attach socket carries raw JSON lines to the runner's stdin and Docker's multiplexed frames
back from its stdout; keeping one attached interpreter alive is what makes a call cost well under
a millisecond instead of the ~0.4 s of a container start.
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

from sandbox.image import RUNNER_COMMAND
from sandbox.owner import owner_labels
from sandbox.settings import SandboxSettings

FRAME_HEADER = 8
MAX_LINE = 64 * 1024 * 1024  # a reply larger than this means the protocol was tampered with


class ContainerGone(Exception):
    """The runner stopped answering: its process or the whole container died."""


@dataclass(frozen=True)
class ExitState:
    oom_killed: bool
    exit_code: int | None


def hardened_config(settings: SandboxSettings, pool_id: str = "") -> dict[str, Any]:
    """docker-py `containers.create` arguments: every restriction in one place."""
    uid, _, gid = settings.user.partition(":")
    config: dict[str, Any] = {
        "image": settings.image,
        "command": RUNNER_COMMAND,
        "stdin_open": True,
        "tty": False,
        "network_mode": "none",
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "read_only": True,
        "tmpfs": {
            "/work": f"rw,nosuid,nodev,noexec,size={settings.tmpfs_size},"
            f"uid={uid},gid={gid or uid},mode=0700"
        },
        "working_dir": "/work",
        "user": settings.user,
        "mem_limit": settings.memory,
        "memswap_limit": settings.memory,
        "pids_limit": settings.pids,
        "nano_cpus": int(settings.cpus * 1e9),
        "environment": {"HOME": "/work", "TMPDIR": "/work", "LANG": "C.UTF-8"},
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

    @property
    def id(self) -> str:
        return self.container.id or ""

    @classmethod
    async def start(
        cls, client: docker.DockerClient, settings: SandboxSettings, pool_id: str = ""
    ) -> SandboxContainer:
        """Create, attach, start and wait until the runner has pre-imported its libraries."""
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
            await asyncio.wait_for(self.call({"op": "ping"}), settings.start_timeout)
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
                reply = json.loads(await self._read_line())
            except (ConnectionError, asyncio.IncompleteReadError, ValueError) as exc:
                raise ContainerGone(str(exc) or type(exc).__name__) from exc
            if not isinstance(reply, dict) or reply.get("id") != self._next_id:
                raise ContainerGone("the runner's reply did not match the request")
            return reply

    async def _read_line(self) -> bytes:
        assert self._reader is not None
        while (end := self._buffer.find(b"\n")) < 0:
            header = await self._reader.readexactly(FRAME_HEADER)
            payload = await self._reader.readexactly(int.from_bytes(header[4:], "big"))
            if header[0] == 1:  # stdout; the runner never writes to stderr
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
