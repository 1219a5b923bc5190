"""What a request may ask for: body size, and budgets within the server's caps."""

from __future__ import annotations

import json

from fastapi import HTTPException, status
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent.api.schemas import RunRequest
from agent.api.settings import ApiSettings
from agent.settings import AgentSettings, RunOptions


class BodyLimit:
    """Refuses bodies over `max_bytes` with 413, whether or not Content-Length is sent."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise HTTPException(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, self._detail())
            return message

        await self.app(scope, limited, send)

    def _detail(self) -> str:
        return f"the request body is over {self.max_bytes} bytes (STARTBOX_API_MAX_BODY_BYTES)"

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"detail": self._detail()}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def capped_options(body: RunRequest, agent: AgentSettings, api: ApiSettings) -> RunOptions:
    """The run's options: the agent's defaults, the request's choices, within the caps."""
    caps = {
        "thinking_budget": api.max_thinking_budget,
        "answer_budget": api.max_answer_budget,
        "max_tool_calls": api.max_tool_calls,
        "min_tool_calls": api.max_tool_calls,
        "hint_rounds": api.max_hint_rounds,
        "timeout": api.max_timeout,
    }
    chosen = body.model_dump(exclude={"question"}, exclude_none=True)
    over = [
        f"{name} ≤ {caps[name]:g}"
        for name, value in chosen.items()
        if name in caps and value > caps[name]
    ]
    if over:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY, f"over this server's limits: {', '.join(over)}"
        )
    options = agent.run_options(**chosen)
    return options.model_copy(
        update={name: min(getattr(options, name), cap) for name, cap in caps.items()}
    )
