"""The one exception tree of `workflows`: every error it raises on purpose is a WorkflowsError,
whose message is one line that names the fix (the `startbox` CLI prints just that line)."""

from __future__ import annotations


class WorkflowsError(Exception):
    """Base of every error `workflows` raises on purpose."""


class QueueUnavailable(WorkflowsError, ConnectionError):
    """Redis cannot be reached (at connect, or for longer than the reconnect window)."""


class BatchNotFound(WorkflowsError, KeyError):
    """No batch of that name on the queue."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class ResultsError(WorkflowsError):
    """A results file cannot be written where it was asked for."""
