"""UI configuration: every field has an env twin `STARTBOX_UI_<NAME>`.

`startbox ui` passes its flags to the Streamlit process through these variables, which is also
how a container sets them.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class UiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STARTBOX_UI_", extra="forbid")

    api_url: str = Field("http://127.0.0.1:8000", description="Base URL of `startbox api`.")
    api_key: str | None = Field(None, description="Sent as `x-api-key`; one of STARTBOX_API_KEYS.")
    host: str = Field(
        "127.0.0.1", description="Interface the UI listens on (0.0.0.0 in a container)."
    )
    port: int = Field(8501, ge=1, le=65535, description="Port the UI listens on.")
    timeout: float = Field(10.0, gt=0, description="Seconds per ordinary API call.")
    follow_timeout: float = Field(
        1800.0, gt=0, description="Seconds the page follows a live run before asking for a reload."
    )
    recent_threads: int = Field(
        20, ge=1, le=500, description="Conversations listed in the sidebar."
    )
