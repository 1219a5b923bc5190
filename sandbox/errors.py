"""The sandbox's one exception tree: everything it raises on purpose is a `SandboxError`."""

from __future__ import annotations


class SandboxError(RuntimeError):
    """The sandbox cannot serve: no engine, no image, or no free container in time."""


class PoolExhausted(SandboxError):
    """No container could be handed out within `acquire_timeout`: waiting, not running, failed
    (a code timeout is an `ExecResult` with status `timeout`, never this)."""


class ImageError(SandboxError):
    """The sandbox image is missing, stale, or could not be built."""


class ContainerGone(SandboxError):
    """The supervisor stopped answering or answered out of protocol; the container is dropped."""
