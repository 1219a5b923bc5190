"""The one exception tree of `model_host`: every error it raises on purpose is a
ModelHostError, whose message is one line that names the fix (the `startbox` CLI prints it)."""

from __future__ import annotations


class ModelHostError(Exception):
    """Base of every error `model_host` raises on purpose."""
