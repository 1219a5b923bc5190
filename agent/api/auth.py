"""API keys as a FastAPI dependency: `x-api-key` or `Authorization: Bearer`."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from agent.api.settings import ApiSettings

api_key_header = APIKeyHeader(name="x-api-key", auto_error=False)
bearer = HTTPBearer(auto_error=False)


def settings_of(request: Request) -> ApiSettings:
    return request.app.state.settings


async def require_key(
    settings: Annotated[ApiSettings, Depends(settings_of)],
    header_key: Annotated[str | None, Depends(api_key_header)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    if settings.open:
        return
    given = header_key or (credentials.credentials if credentials else None)
    if given is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "an API key is required: send `x-api-key: KEY` or `Authorization: Bearer KEY`",
        )
    if not any(secrets.compare_digest(given, key) for key in settings.key_set):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "the API key is not valid")
