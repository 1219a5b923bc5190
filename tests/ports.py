"""Free loopback ports for the servers tests start, and the env of a scripted `startbox api`."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scripted_api_env(model_url: str, workdir: Path, port: int, **api: str) -> dict[str, str]:
    """The environment of a `startbox api` whose model is a scripted server: one place for the
    settings the API and UI suites share; `api` adds STARTBOX_API_<NAME> entries."""
    return {
        **os.environ,
        "STARTBOX_MODEL_BASE_URL": model_url,
        "STARTBOX_MODEL_SERVED_NAME": "scripted",
        "STARTBOX_MODEL_PROFILE": "qwen3",
        "STARTBOX_MODEL_RETRIES": "0",
        "STARTBOX_AGENT_STORE_PATH": str(workdir / "runs.db"),
        "STARTBOX_AGENT_ROUND_TOKENS": "64",
        "STARTBOX_AGENT_TIMEOUT": "60",
        "STARTBOX_API_PORT": str(port),
        **{f"STARTBOX_API_{name.upper()}": value for name, value in api.items()},
    }
