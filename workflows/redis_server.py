"""The redis-server command line that `startbox redis` and the tests use.

Append-only persistence, so queued jobs and results survive a Redis restart; loopback only,
because this Redis has no password.
"""

from __future__ import annotations

import shutil
from pathlib import Path


def redis_command(port: int, directory: Path) -> list[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError(
            "redis-server is not installed: `apt-get install redis-server` "
            "(scripts/setup-system.sh does it)"
        )
    directory.mkdir(parents=True, exist_ok=True)
    return [
        binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
        "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
    ]  # fmt: skip
