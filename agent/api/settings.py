"""API configuration: every field has an env twin `STARTBOX_API_<NAME>`."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STARTBOX_API_", extra="forbid")

    host: str = Field("127.0.0.1", description="Interface to listen on.")
    port: int = Field(8000, ge=1, le=65535)
    keys: str = Field("", description="Comma-separated API keys (STARTBOX_API_KEYS).")
    admin_keys: str = Field(
        "", description="Comma-separated keys that see every key's runs and threads."
    )
    open: bool = Field(False, description="Serve without keys; only when set on purpose.")
    max_concurrent_runs: int = Field(8, ge=1, description="Runs at once; more get 429.")
    max_body_bytes: int = Field(256 * 1024, ge=1024, description="Largest request body.")
    max_thinking_budget: int = Field(32768, ge=1)
    max_answer_budget: int = Field(8192, ge=1)
    max_tool_calls: int = Field(16, ge=0)
    max_hint_rounds: int = Field(8, ge=0)
    max_timeout: float = Field(3600.0, gt=0)
    retry_after: int = Field(5, ge=1, description="Seconds a 429 tells the client to wait.")

    @property
    def key_set(self) -> frozenset[str]:
        """Every accepted key: the plain ones and the admin ones."""
        return _keys(self.keys) | self.admin_key_set

    @property
    def admin_key_set(self) -> frozenset[str]:
        return _keys(self.admin_keys)


def _keys(text: str) -> frozenset[str]:
    return frozenset(key.strip() for key in text.split(",") if key.strip())
