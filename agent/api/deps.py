"""The dependencies every router shares: settings, the caller's identity, the run manager,
the stores. One place, as in FastAPI's full-stack template (`api/deps.py`)."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from agent.api.manager import RunManager, UnknownRun
from agent.api.settings import ApiSettings
from agent.conversation import Conversations
from agent.store import RunRecord, RunStore

api_key_header = APIKeyHeader(name="x-api-key", auto_error=False)
bearer = HTTPBearer(auto_error=False)
OPEN_OWNER = "open"  # the owner of everything made on an API served without keys


def owner_of(key: str) -> str:
    """What the store keeps of a key: a hash, so a leaked store leaks no key."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Caller:
    owner: str
    admin: bool = False

    def may_see(self, owner: str) -> bool:
        return self.admin or owner == self.owner

    @property
    def scope(self) -> str | None:
        """The owner to filter lists by; None (all) for an admin."""
        return None if self.admin else self.owner


def settings_of(request: Request) -> ApiSettings:
    return request.app.state.settings


Settings = Annotated[ApiSettings, Depends(settings_of)]


def _matches(given: bytes, keys: frozenset[str]) -> bool:
    """Constant-time comparison of bytes: a header may hold any byte (latin-1), and
    `compare_digest` on non-ASCII str raises."""
    return any(hmac.compare_digest(given, key.encode()) for key in keys)


async def require_key(
    settings: Settings,
    header_key: Annotated[str | None, Depends(api_key_header)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    if settings.open:
        return Caller(OPEN_OWNER, admin=True)
    given = header_key or (credentials.credentials if credentials else None)
    if given is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "an API key is required: send `x-api-key: KEY` or `Authorization: Bearer KEY`",
        )
    raw = given.encode("latin-1", "replace")  # how Starlette decoded the header's bytes
    if not _matches(raw, settings.key_set):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "the API key is not valid")
    return Caller(owner_of(given), admin=_matches(raw, settings.admin_key_set))


CallerDep = Annotated[Caller, Depends(require_key)]


def _not_json(constant: str) -> None:
    raise ValueError(constant)


async def plain_json(request: Request) -> None:
    """Refuses NaN/Infinity and lone UTF-16 surrogates (`"\ud800"`) anywhere in a JSON body,
    even in fields nobody reads: `json.loads` accepts both, yet no store, tokenizer or
    response can hold them."""
    if "json" not in request.headers.get("content-type", ""):
        return
    try:
        body = json.loads(await request.body(), parse_constant=_not_json)
    except ValueError as exc:
        if exc.args and exc.args[0] in ("NaN", "Infinity", "-Infinity"):
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_ENTITY,
                f"{exc.args[0]} is not JSON: send finite numbers",
            ) from None
        return  # other malformed bodies get FastAPI's own 422
    try:
        json.dumps(body, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY,
            "the body holds a lone UTF-16 surrogate (such as \\ud800): send valid Unicode",
        ) from None


def manager_of(request: Request) -> RunManager:
    return request.app.state.manager


Manager = Annotated[RunManager, Depends(manager_of)]


def store_of(manager: Manager) -> RunStore:
    if manager.agent.store is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the run store is disabled")
    return manager.agent.store


Store = Annotated[RunStore, Depends(store_of)]


def conversations_of(manager: Manager) -> Conversations:
    if manager.conversations is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "threads need the run store (STARTBOX_AGENT_PERSIST=1)",
        )
    return manager.conversations


ConversationsDep = Annotated[Conversations, Depends(conversations_of)]


async def owned_run(run_id: str, caller: CallerDep, store: Store) -> RunRecord:
    """The run, if the caller may see it; another key's run is a 404, as if it did not exist."""
    record = await store.get(run_id, with_events=False)
    if record is None or not caller.may_see(record.owner):
        raise UnknownRun(run_id)
    return record


OwnedRun = Annotated[RunRecord, Depends(owned_run)]
