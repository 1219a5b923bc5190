"""The model host: preparing models, launching vLLM, the completion client, model profiles."""

from model_host.errors import (
    LockTimeout,
    ModelHostError,
    ModelRequestError,
    ModelUnavailable,
    PrepareError,
    ServeError,
)

__all__ = [
    "LockTimeout",
    "ModelHostError",
    "ModelRequestError",
    "ModelUnavailable",
    "PrepareError",
    "ServeError",
]
