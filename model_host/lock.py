"""Cross-process file locks with a timeout: one prepare, one vLLM start per port at a time."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from model_host.errors import LockTimeout

_POLL = 0.2


def _try_lock(handle: object) -> bool:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # type: ignore[arg-type]
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def file_lock(path: Path, timeout: float) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    with path.open("a") as handle:
        while not _try_lock(handle):
            if time.monotonic() > deadline:
                raise LockTimeout(f"{path} stayed locked by another process for {timeout:.0f} s")
            time.sleep(_POLL)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.asynccontextmanager
async def async_file_lock(path: Path, timeout: float) -> AsyncIterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    with path.open("a") as handle:
        while not _try_lock(handle):
            if time.monotonic() > deadline:
                raise LockTimeout(f"{path} stayed locked by another process for {timeout:.0f} s")
            await asyncio.sleep(_POLL)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
