"""Sandbox configuration: every field has an env twin `STARTBOX_SANDBOX_<NAME>`."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_image() -> str:
    from sandbox.image import default_tag  # docker-py is imported only when a tag is needed

    return default_tag()


class SandboxSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="STARTBOX_SANDBOX_", extra="forbid", populate_by_name=True
    )

    image: str = Field(default_factory=_default_image, description="Sandbox image tag.")
    pool_size: int = Field(2, ge=0, le=64, description="Containers kept warm ahead of demand.")
    max_sessions: int = Field(16, ge=1, description="Sessions (containers in use) at most at once.")
    acquire_timeout: float = Field(30.0, gt=0, description="Seconds to wait for a free container.")
    start_timeout: float = Field(60.0, gt=0, description="Seconds a container may take to warm up.")
    timeout: float = Field(10.0, gt=0, le=3600, description="Default wall-clock seconds per call.")
    memory: str = Field("512m", description="Memory limit per container; swap is set equal.")
    cpus: float = Field(1.0, gt=0, description="CPU quota per container, in cores.")
    pids: int = Field(128, ge=16, description="Process/thread limit per container.")
    tmpfs_size: str = Field("64m", description="Size of the writable working directory.")
    shm_size: str = Field("16m", description="Size of /dev/shm (wiped between sessions).")
    max_idle: int = Field(
        8, ge=0, description="Released containers kept for their tenant's next session."
    )
    idle_ttl: float = Field(300.0, gt=0, description="Seconds an idle tenant container is kept.")
    grace: float = Field(
        5.0, gt=0, description="Seconds past a call's timeout before the host kills the container."
    )
    max_output: int = Field(64 * 1024, ge=256, description="Bytes kept per stream (head + tail).")
    max_code: int = Field(1024 * 1024, ge=1, description="Largest accepted code, in bytes.")
    max_stdin: int = Field(4 * 1024 * 1024, ge=0, description="Largest accepted stdin, in bytes.")
    max_images: int = Field(8, ge=0, le=64, description="Figures kept per call.")
    max_image_bytes: int = Field(1024 * 1024, ge=1024, description="Largest PNG kept, in bytes.")
    runtime: str | None = Field(None, description="Alternative OCI runtime, e.g. runsc (gVisor).")
    user: str = Field("65534:65534", description="Non-root uid:gid the code runs as.")
    preload: str = Field(
        "numpy,sympy,mpmath,scipy,matplotlib.pyplot",  # pandas, networkx: import on use
        description="Modules the supervisor imports once per container, before any fork.",
    )
    home: Path = Field(
        Path.home() / ".cache" / "startbox",
        validation_alias="STARTBOX_HOME",  # the plain name would also match $HOME
        description="Data directory shared by all of startbox (STARTBOX_HOME).",
    )
