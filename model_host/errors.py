"""The one exception tree of `model_host`: every error it raises on purpose is a
ModelHostError, whose message is one line that names the fix (the `startbox` CLI prints it)."""

from __future__ import annotations


class ModelHostError(Exception):
    """Base of every error `model_host` raises on purpose."""


class ModelUnavailable(ModelHostError, RuntimeError):
    """Server unreachable, wrong model name, or it kept failing; the message names the fix."""


class ModelRequestError(ModelHostError, RuntimeError):
    """The server refused this request (e.g. prompt longer than the context)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class PrepareError(ModelHostError, RuntimeError):
    """The model could not be made servable; the message says what to do instead."""


class ServeError(ModelHostError, RuntimeError):
    """vLLM could not be started or did not become ready; the message says why and what to do."""


class LockTimeout(ModelHostError, TimeoutError):
    """Another process held the model's lock for longer than the wait."""
