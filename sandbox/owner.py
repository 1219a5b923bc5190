"""Who owns a sandbox container, so leftovers of a crashed (SIGKILLed) owner can be reaped.

The owner is host + pid + the process start time: a pid alone could be reused by an unrelated
process after a crash, and the start time tells them apart.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import docker
import docker.errors

LABEL = "startbox.sandbox"
OWNER_LABEL = "startbox.owner"
POOL_LABEL = "startbox.pool"


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22, counted after the command name


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{_start_time(os.getpid())}"


def owner_labels(pool_id: str = "") -> dict[str, str]:
    return {LABEL: "1", OWNER_LABEL: owner_id(), POOL_LABEL: pool_id}


def owner_alive(owner: str) -> bool:
    """False only when the owner is surely gone; another host's owners are never judged."""
    host, _, rest = owner.partition(":")
    pid, _, started = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    return _start_time(int(pid)) == started


def reap_leftovers(client: docker.DockerClient) -> int:
    """Remove sandbox containers whose owner died; returns how many were removed."""
    removed = 0
    for container in list_sandboxes(client):
        if owner_alive(container["Labels"].get(OWNER_LABEL, "")):
            continue
        try:
            client.api.remove_container(container["Id"], force=True)
            removed += 1
        except docker.errors.NotFound:
            continue
    return removed


def list_sandboxes(client: docker.DockerClient) -> list[dict[str, Any]]:
    """Sandbox containers as the list API gives them: no per-container inspect, which would
    race with containers being removed."""
    return client.api.containers(all=True, filters={"label": LABEL})
