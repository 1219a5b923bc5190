"""The one exception tree of `agent`: every error it raises on purpose is an AgentError, whose
message is one line that names the fix (the `startbox` CLI prints just that line)."""

from __future__ import annotations


class AgentError(Exception):
    """Base of every error `agent` raises on purpose."""


class StoreError(AgentError):
    """The run store cannot serve."""


class StoreUnavailable(StoreError):
    """The run store cannot be opened (missing, unreadable or not a database)."""


class StoreWriteError(StoreError):
    """A run, event or state could not be stored: never dropped silently."""
