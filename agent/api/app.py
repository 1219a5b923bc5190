"""The FastAPI app: runs, SSE events, health, metrics; the OpenAI facade lives in chat.py."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import generate_latest
from sse_starlette import EventSourceResponse, ServerSentEvent

from agent.api.auth import require_key
from agent.api.chat import router as chat_router
from agent.api.limits import BodyLimit, capped_options
from agent.api.manager import RunManager, TooBusy, UnknownRun
from agent.api.metrics import Metrics
from agent.api.schemas import RunCreated, RunList, RunRequest, SolveResult
from agent.api.settings import ApiSettings
from agent.service import Agent, QuestionError
from agent.store import RunRecord, RunStore

log = logging.getLogger("startbox.api")


def manager_of(request: Request) -> RunManager:
    return request.app.state.manager


Manager = Annotated[RunManager, Depends(manager_of)]
router = APIRouter(prefix="/v1", dependencies=[Depends(require_key)])


@router.post("/runs", status_code=status.HTTP_201_CREATED)
async def start_run(body: RunRequest, manager: Manager, request: Request) -> RunCreated:
    """Start a run; follow it with GET /v1/runs/{id}/events."""
    options = capped_options(body, manager.agent.settings, request.app.state.settings)
    return RunCreated(id=manager.start(body.question, options), status="running")


@router.get("/runs")
async def list_runs(manager: Manager, limit: Annotated[int, Query(ge=1, le=500)] = 20) -> RunList:
    store = _store(manager)
    return RunList(runs=await store.recent(limit))


@router.get("/runs/{run_id}")
async def get_run(run_id: str, manager: Manager) -> RunRecord:
    record = await _store(manager).get(run_id)
    if record is None:
        raise UnknownRun(run_id)
    return record


@router.get("/runs/{run_id}/events", response_class=EventSourceResponse)
async def run_events(
    run_id: str,
    manager: Manager,
    last_event_id: Annotated[int | None, Header(ge=0)] = None,
    after: Annotated[int, Query(ge=0, description="Same as Last-Event-ID.")] = 0,
) -> EventSourceResponse:
    """Server-Sent Events: `id` is the event's seq, `event` its type; resume with
    Last-Event-ID. The stream ends after run_finished."""
    events = manager.follow(run_id, last_event_id if last_event_id is not None else after)
    first = await anext(events, None)  # an unknown run fails here, as a 404, not mid-stream

    async def stream() -> AsyncIterator[ServerSentEvent]:
        if first is not None:
            yield _sse(first)
        async for event in events:
            yield _sse(event)

    return EventSourceResponse(stream(), ping=15)


@router.post("/runs/{run_id}/cancel", status_code=status.HTTP_202_ACCEPTED)
async def cancel_run(run_id: str, manager: Manager) -> RunCreated:
    """Stop a run and release its sandbox; a finished run is left as it was."""
    await manager.cancel(run_id)
    record = await _store(manager).get(run_id, with_events=False)
    assert record is not None
    return RunCreated(id=run_id, status=record.status)


@router.post("/solve")
async def solve(body: RunRequest, manager: Manager, request: Request) -> SolveResult:
    """Start a run and wait for its answer."""
    options = capped_options(body, manager.agent.settings, request.app.state.settings)
    run_id = manager.start(body.question, options)
    async with asyncio.timeout(options.timeout + 30):
        finished = await manager.wait(run_id)
    record = await _store(manager).get(run_id)
    assert record is not None
    return SolveResult(
        id=run_id,
        status=finished.status,
        answer=finished.answer,
        usage=finished.usage,
        timings_ms=finished.timings_ms,
        events=record.events,
    )


def _sse(event: object) -> ServerSentEvent:
    return ServerSentEvent(
        data=event.model_dump_json(),  # type: ignore[attr-defined]
        event=event.type,  # type: ignore[attr-defined]
        id=str(event.seq),  # type: ignore[attr-defined]
    )


def _store(manager: RunManager) -> RunStore:
    if manager.agent.store is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the run store is disabled")
    return manager.agent.store


def create_app(
    settings: ApiSettings | None = None, agent_factory: Callable[[], Agent] = Agent
) -> FastAPI:
    settings = settings or ApiSettings()
    if not settings.open and not settings.key_set:
        raise ValueError(
            "no API keys: set STARTBOX_API_KEYS=key1,key2, or STARTBOX_API_OPEN=1 to serve "
            "without keys on purpose"
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.open:
            log.warning(
                "the API is OPEN: anyone who reaches %s:%s can run code",
                settings.host,
                settings.port,
            )
        async with agent_factory() as agent:
            app.state.manager = RunManager(agent, settings.max_concurrent_runs, app.state.metrics)
            app.state.metrics.bind_pool(lambda: agent.pool.size)
            try:
                yield
            finally:
                await app.state.manager.shutdown()

    app = FastAPI(title="startbox", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.include_router(router)
    app.include_router(chat_router)
    _add_health(app)
    _add_errors(app, settings)
    return app


def _add_health(app: FastAPI) -> None:
    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        """Ready when the model host answers, the sandbox pool can serve and the store reads."""
        manager: RunManager = request.app.state.manager
        checks = await ready_checks(manager.agent)
        ok = all(value == "ok" for value in checks.values())
        return JSONResponse(checks, status_code=200 if ok else 503)

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics(request: Request) -> PlainTextResponse:
        body = generate_latest(request.app.state.metrics.registry)
        return PlainTextResponse(body, media_type="text/plain; version=0.0.4")


async def ready_checks(agent: Agent) -> dict[str, str]:
    async def model() -> str:
        async with asyncio.timeout(5):
            served = await agent.client.models()
        return (
            "ok" if agent.client.model in served else f"serves {served}, not {agent.client.model}"
        )

    async def sandbox() -> str:
        size = agent.pool.size
        return (
            "ok"
            if size["ready"] or size["starting"] or agent.pool.settings.pool_size == 0
            else (f"no warm or starting container ({size})")
        )

    async def store() -> str:
        if agent.store is None:
            return "ok"
        async with asyncio.timeout(5):
            await agent.store.recent(1)
        return "ok"

    checks: dict[str, str] = {}
    for name, check in (("model", model), ("sandbox", sandbox), ("store", store)):
        try:
            checks[name] = await check()
        except Exception as exc:  # a readiness probe reports, it does not raise
            checks[name] = f"{type(exc).__name__}: {exc}"
    return checks


def _add_errors(app: FastAPI, settings: ApiSettings) -> None:
    @app.exception_handler(QuestionError)
    async def bad_question(request: Request, exc: QuestionError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(TooBusy)
    async def busy(request: Request, exc: TooBusy) -> JSONResponse:
        headers = {"Retry-After": str(settings.retry_after)}
        return JSONResponse({"detail": f"{exc}; retry later"}, status_code=429, headers=headers)

    @app.exception_handler(UnknownRun)
    async def unknown(request: Request, exc: UnknownRun) -> JSONResponse:
        return JSONResponse({"detail": f"no run with id {exc.args[0]!r}"}, status_code=404)

    @app.exception_handler(TimeoutError)
    async def timed_out(request: Request, exc: TimeoutError) -> JSONResponse:
        return JSONResponse({"detail": "the run did not finish in time"}, status_code=504)
