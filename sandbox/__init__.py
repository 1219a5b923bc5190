"""Runs model-written Python in hardened Docker containers: a supervisor as pid 1 owns the
protocol and forks fresh interpreters from a warm copy; sessions are stateful and recycled only
within one tenant.

    async with SandboxPool(settings) as pool:
        async with pool.session(tenant="api-key-1") as s:
            r = await s.run("x = 1\\nx + 1", timeout=10)            # a notebook-like cell
            p = await s.run_program(code, stdin="3 4\\n", timeout=5)  # a whole program, fresh

Names are loaded on first use, so `startbox --help` does not import docker.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("startbox")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"

_EXPORTS = {
    "SandboxPool": "sandbox.pool",
    "Session": "sandbox.pool",
    "SandboxSettings": "sandbox.settings",
    "ExecResult": "sandbox.result",
    "Image": "sandbox.result",
    "Status": "sandbox.result",
    "SandboxError": "sandbox.errors",
    "PoolExhausted": "sandbox.errors",
    "ImageError": "sandbox.errors",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'sandbox' has no attribute {name!r}")
