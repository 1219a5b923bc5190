"""Free loopback ports for the servers tests start (vLLM, the API, the UI, Redis)."""

from __future__ import annotations

import socket


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
