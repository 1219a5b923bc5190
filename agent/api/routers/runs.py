"""Runs: start, list, read, follow live over SSE (resumable), cancel, solve-and-wait."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, status
from sse_starlette import EventSourceResponse, ServerSentEvent

from agent.api.deps import CallerDep, Manager, OwnedRun, Settings, Store
from agent.api.limits import capped_options
from agent.api.schemas import RunCreated, RunList, RunRequest, SolveResult
from agent.events import Event
from agent.store import RunRecord

router = APIRouter(prefix="/v1", tags=["runs"])


@router.post("/runs", status_code=status.HTTP_201_CREATED)
async def start_run(
    body: RunRequest, caller: CallerDep, manager: Manager, settings: Settings
) -> RunCreated:
    """Start a run; follow it with GET /v1/runs/{id}/events."""
    options = capped_options(body, manager.agent.settings, settings)
    run_id = await manager.start(body.question, options, caller.owner, thinking=body.thinking)
    return RunCreated(id=run_id, status="running")


@router.get("/runs")
async def list_runs(
    caller: CallerDep, store: Store, limit: Annotated[int, Query(ge=1, le=500)] = 20
) -> RunList:
    """The caller's runs, newest first (an admin key: everyone's)."""
    return RunList(runs=await store.recent(limit, owner=caller.scope))


@router.get("/runs/{run_id}")
async def get_run(run: OwnedRun, store: Store) -> RunRecord:
    run.events = await store.events(run.id)
    return run


@router.get("/runs/{run_id}/events", response_class=EventSourceResponse)
async def run_events(
    run: OwnedRun,
    manager: Manager,
    last_event_id: Annotated[int | None, Header(ge=0)] = None,
    after: Annotated[int, Query(ge=0, description="Same as Last-Event-ID.")] = 0,
) -> EventSourceResponse:
    """Server-Sent Events: `id` is the event's seq, `event` its type; resume with
    Last-Event-ID. The stream ends after run_finished."""
    events = manager.follow(run.id, last_event_id if last_event_id is not None else after)

    async def stream() -> AsyncIterator[ServerSentEvent]:
        async for event in events:
            yield sse(event)

    return EventSourceResponse(stream(), ping=15)


@router.post("/runs/{run_id}/cancel", status_code=status.HTTP_202_ACCEPTED)
async def cancel_run(run: OwnedRun, manager: Manager, store: Store) -> RunCreated:
    """Stop a run and release its sandbox; a finished run is left as it was."""
    await manager.cancel(run.id)
    record = await store.get(run.id, with_events=False)
    assert record is not None
    return RunCreated(id=run.id, status=record.status)


@router.post("/solve")
async def solve(
    body: RunRequest, caller: CallerDep, manager: Manager, settings: Settings, store: Store
) -> SolveResult:
    """Start a run and wait for its answer."""
    options = capped_options(body, manager.agent.settings, settings)
    run_id = await manager.start(body.question, options, caller.owner, thinking=body.thinking)
    async with asyncio.timeout(options.timeout + 30):
        finished = await manager.wait(run_id)
    events = await store.events(run_id)
    return SolveResult(
        id=run_id,
        status=finished.status,
        answer=finished.answer,
        usage=finished.usage,
        timings_ms=finished.timings_ms,
        events=events,
    )


def sse(event: Event) -> ServerSentEvent:
    return ServerSentEvent(data=event.model_dump_json(), event=event.type, id=str(event.seq))
