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
    prefix, nested = _env_prefix(exc.title)
    parts = []
    for error in exc.errors(include_url=False):
        where = [str(part) for part in error["loc"]]
        name = (
            f"{prefix}{nested.join(where).upper()}"
            if prefix is not None
            else ".".join([exc.title, *where])
        )
        given = error.get("input")
        shown = f"={_short(given)}" if isinstance(given, str | int | float) else ""
        parts.append(f"{name}{shown}: {error['msg']}")
    return f"invalid setting {'; '.join(parts)} (fix or unset it)"


def _env_prefix(title: str) -> tuple[str | None, str]:
    """The env prefix and nested delimiter of the settings class named `title` (None for
    another model): `STARTBOX_MODEL_SAMPLING__TEMPERATURE`, as the user spells it."""
    todo: list[type[BaseSettings]] = [BaseSettings]
    while todo:
        cls = todo.pop()
        if cls.__name__ == title and cls is not BaseSettings:
            config = cls.model_config
            return str(config.get("env_prefix", "")), str(config.get("env_nested_delimiter") or ".")
        todo.extend(cls.__subclasses__())
    return None, "."


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
