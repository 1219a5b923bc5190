"""The FastAPI app: its lifespan (agent, conversations, run manager), routers and errors."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from agent.api.deps import plain_json
from agent.api.limits import BodyLimit
from agent.api.manager import RunManager, TooBusy, UnknownRun
from agent.api.metrics import Metrics
from agent.api.routers import agent_protocol, health, openai, runs, threads
from agent.api.settings import ApiSettings
from agent.conversation import Conversations, ThreadBusy
from agent.errors import StoreError
from agent.service import Agent, QuestionError
from agent.threads import ThreadStore

log = logging.getLogger("startbox.api")


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
        async with contextlib.AsyncExitStack() as stack:
            agent = await stack.enter_async_context(agent_factory())
            conversations = None
            if agent.store is not None:
                thread_store = await stack.enter_async_context(ThreadStore(agent.store))
                conversations = await stack.enter_async_context(Conversations(agent, thread_store))
            app.state.manager = RunManager(
                agent, settings.max_concurrent_runs, app.state.metrics, conversations
            )
            app.state.metrics.bind_pool(lambda: agent.pool.size)
            try:
                yield
            finally:
                await app.state.manager.shutdown()

    app = FastAPI(
        title="startbox",
        version="0.1.0",
        lifespan=lifespan,
        dependencies=[Depends(plain_json)],
    )
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    for module in (runs, threads, openai, agent_protocol, health):
        app.include_router(module.router)
    _add_errors(app, settings)
    return app


def _add_errors(app: FastAPI, settings: ApiSettings) -> None:
    def refuse(status: int, detail: str, **headers: str) -> JSONResponse:
        return JSONResponse({"detail": detail}, status_code=status, headers=headers or None)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        """422 without the echoed input: it may hold what no JSON can encode (NaN, a lone
        surrogate) or a secret; where and why is enough to fix the request."""
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        body = json.dumps({"detail": errors}, ensure_ascii=True, default=str)
        return Response(body, status_code=422, media_type="application/json")

    @app.exception_handler(QuestionError)
    async def bad_question(request: Request, exc: QuestionError) -> JSONResponse:
        return refuse(400, str(exc))

    @app.exception_handler(TooBusy)
    async def busy(request: Request, exc: TooBusy) -> JSONResponse:
        return refuse(429, f"{exc}; retry later", **{"Retry-After": str(settings.retry_after)})

    @app.exception_handler(ThreadBusy)
    async def thread_busy(request: Request, exc: ThreadBusy) -> JSONResponse:
        return refuse(409, str(exc))

    @app.exception_handler(StoreError)
    async def no_store(request: Request, exc: StoreError) -> JSONResponse:
        return refuse(503, f"runs are refused: {exc}")

    @app.exception_handler(UnknownRun)
    async def unknown(request: Request, exc: UnknownRun) -> JSONResponse:
        return refuse(404, f"no run with id {exc.args[0]!r}")

    @app.exception_handler(TimeoutError)
    async def timed_out(request: Request, exc: TimeoutError) -> JSONResponse:
        return refuse(504, "the run did not finish in time")
