"""Batch solving: datasets, grading, reports, the in-process runner and the Redis queue."""

from workflows.errors import BatchNotFound, QueueUnavailable, ResultsError, WorkflowsError

__all__ = ["BatchNotFound", "QueueUnavailable", "ResultsError", "WorkflowsError"]
