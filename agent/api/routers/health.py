"""Liveness, readiness (model, sandbox, store) and Prometheus metrics; no key needed."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import generate_latest

from agent.api.deps import Manager
from agent.service import Agent

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(manager: Manager) -> JSONResponse:
    """Ready when the model host answers, the sandbox pool can serve and the store can keep
    runs (it is there, the file that was opened, and takes writes)."""
    checks = await ready_checks(manager.agent)
    ok = all(value == "ok" for value in checks.values())
    return JSONResponse(checks, status_code=200 if ok else 503)


@router.get("/metrics", response_class=PlainTextResponse)
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
        if (problem := await agent.store_problem()) is not None:
            return problem
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
