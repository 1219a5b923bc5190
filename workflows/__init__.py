"""Batch solving: datasets, grading, reports, the in-process runner and the Redis queue."""
