"""CLI flags of the model host's settings, one definition each: the help is the field's
description (with its default) and the env twin is the field's `STARTBOX_MODEL_` variable."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from model_host.settings import ModelSettings


def model_option(field: str, *declarations: str, help: str | None = None) -> Any:
    """The flag of a ModelSettings field; `help` replaces the description where a command
    uses the field differently (bench measures the server at `base_url`)."""
    info = ModelSettings.model_fields[field]
    default = "" if info.default is None else f" Default {info.default}."
    return typer.Option(
        *declarations,
        envvar=f"STARTBOX_MODEL_{field.upper()}",
        help=help or f"{info.description}{default}",
    )


Model = Annotated[str | None, model_option("model")]
ServedName = Annotated[str | None, model_option("served_name")]
Port = Annotated[int | None, model_option("port")]
Host = Annotated[str | None, model_option("host")]
Device = Annotated[str | None, model_option("device")]
MaxModelLen = Annotated[int | None, model_option("max_model_len")]
Profile = Annotated[str | None, model_option("profile")]
ReasoningParser = Annotated[
    bool | None, model_option("reasoning_parser", "--reasoning-parser/--no-reasoning-parser")
]
PrefixCaching = Annotated[
    bool | None, model_option("prefix_caching", "--prefix-caching/--no-prefix-caching")
]
Compile = Annotated[bool | None, model_option("compile", "--compile/--no-compile")]
BlockSize = Annotated[int | None, model_option("block_size")]
GpuMemoryUtilization = Annotated[float | None, model_option("gpu_memory_utilization")]
Dtype = Annotated[str | None, model_option("dtype")]
StartupTimeout = Annotated[float | None, model_option("startup_timeout")]
BaseUrl = Annotated[str | None, model_option("base_url")]
