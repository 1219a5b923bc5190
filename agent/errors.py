"""The one exception tree of `agent`: every error it raises on purpose is an AgentError, whose
message is one line that names the fix (the `startbox` CLI prints just that line)."""

from __future__ import annotations


class AgentError(Exception):
    """Base of every error `agent` raises on purpose."""


class StoreError(AgentError):
    """The run store cannot serve."""


class StoreUnavailable(StoreError):
    """The run store cannot be opened, or cannot keep a run now (missing, moved, unwritable):
    runs are refused up front rather than lost."""


class StoreWriteError(StoreError):
    """A run, event or state could not be stored: never dropped silently."""


class PortBusy(AgentError):
    """The API's address cannot be bound (in use, or not an address of this machine)."""
