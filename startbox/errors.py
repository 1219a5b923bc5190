"""What the `startbox` root prints for an error: one line, or None for a bug (a traceback).

Each package has one exception tree (agent, model_host, sandbox, workflows); an invalid
setting is a pydantic ValidationError, named by its STARTBOX_* variable.
"""

from __future__ import annotations

import importlib

from pydantic import ValidationError
from pydantic_settings import BaseSettings

TREES = {
    "agent.errors": "AgentError",
    "model_host.errors": "ModelHostError",
    "sandbox.errors": "SandboxError",
    "workflows.errors": "WorkflowsError",
}


def startbox_errors() -> tuple[type[BaseException], ...]:
    """The base of each package's tree, imported only when an error is being explained."""
    bases = []
    for module, name in TREES.items():
        try:
            bases.append(getattr(importlib.import_module(module), name))
        except ModuleNotFoundError:  # a checkout from before that package had its tree
            continue
    return tuple(bases)


def one_line(exc: BaseException) -> str | None:
    if isinstance(exc, ValidationError):
        return invalid_setting(exc)
    if isinstance(exc, startbox_errors()):
        text = " ".join(str(exc).split())  # a message is one line, whatever it wraps
        return text or type(exc).__name__
    return None


def invalid_setting(exc: ValidationError) -> str:
    """`invalid setting STARTBOX_AGENT_THINKING_BUDGET='lots': Input should be ...`."""
    prefix = _env_prefix(exc.title)
    parts = []
    for error in exc.errors(include_url=False):
        field = ".".join(str(part) for part in error["loc"])
        name = f"{prefix}{field.upper()}" if prefix is not None else f"{exc.title}.{field}"
        given = error.get("input")
        shown = f"={_short(given)}" if isinstance(given, str | int | float) else ""
        parts.append(f"{name}{shown}: {error['msg']}")
    return f"invalid setting {'; '.join(parts)} (fix or unset it)"


def _env_prefix(title: str) -> str | None:
    """The env prefix of the settings class named `title`, or None for another model."""
    todo: list[type[BaseSettings]] = [BaseSettings]
    while todo:
        cls = todo.pop()
        if cls.__name__ == title and cls is not BaseSettings:
            return str(cls.model_config.get("env_prefix", ""))
        todo.extend(cls.__subclasses__())
    return None


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
