"""The Agent Protocol subset that LangGraph's own client (`langgraph-sdk`) uses, under
/langgraph: `get_client(url=".../langgraph", api_key=KEY)`.

One assistant (the START agent). Its threads are startbox threads (the same ones as
/v1/threads, so the same owner rules); a run is a turn. Thread values are
`{"messages": [...]}` in LangChain's message-dict form, ending in the assistant's message.
Stream modes: `values` (before and after the turn), `updates` (each tool round and the
answer, by node), `custom` (startbox's trace events).
"""

from __future__ import annotations

import asyncio
import datetime
import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sse_starlette import EventSourceResponse, ServerSentEvent

from agent.api.deps import CallerDep, ConversationsDep, Manager, Settings
from agent.api.limits import capped_options
from agent.api.manager import RunManager
from agent.api.routers.threads import owned_thread
from agent.api.schemas import RunRequest
from agent.conversation import Conversations
from agent.events import Answer, Code, Event, Execution, RunFinished, RunStatus
from agent.threads import Thread, Turn

router = APIRouter(prefix="/langgraph", tags=["agent protocol"])
GRAPH_ID = "startbox"
ASSISTANT_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "startbox/assistant"))  # stable across starts
StreamMode = Literal["values", "updates", "custom", "messages", "events", "debug"]
RUN_STATUS = {
    "running": "running",
    "ok": "success",
    "error": "error",
    "cancelled": "interrupted",
    "interrupted": "interrupted",
}


class Loose(BaseModel):
    """The SDK sends many optional fields; the ones not listed here are accepted and unused."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)


class InputMessage(Loose):
    role: str | None = None
    type: str | None = None
    content: str | list[dict[str, Any]]

    @property
    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "\n".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")


class RunInput(Loose):
    messages: list[InputMessage] = Field(min_length=1)


class RunBody(Loose):
    assistant_id: str
    input: RunInput
    stream_mode: StreamMode | list[StreamMode] = "values"
    context: dict[str, Any] | None = None
    config: dict[str, Any] | None = None

    @property
    def modes(self) -> list[str]:
        return [self.stream_mode] if isinstance(self.stream_mode, str) else list(self.stream_mode)

    def run_request(self) -> RunRequest:
        """Per-run settings from `context` (or `config.configurable`): thinking, budgets,
        sampling; a bad value is a 422, as in a body."""
        chosen = {**((self.config or {}).get("configurable") or {}), **(self.context or {})}
        fields = set(RunRequest.model_fields) - {"question"}
        question = self.input.messages[-1].text
        try:
            return RunRequest(question=question, **{k: v for k, v in chosen.items() if k in fields})
        except ValidationError as exc:  # located as in a body: ("body", "context", field)
            errors = exc.errors(include_input=False)
            raise RequestValidationError(
                [{**error, "loc": ("body", "context", *error["loc"])} for error in errors]
            ) from None


class ThreadBody(Loose):
    metadata: dict[str, Any] | None = None


class SearchBody(Loose):
    limit: int = Field(10, ge=1, le=500)
    offset: int = Field(0, ge=0)


def iso(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat()


def assistant() -> dict[str, Any]:
    return {
        "assistant_id": ASSISTANT_ID,
        "graph_id": GRAPH_ID,
        "name": "startbox",
        "description": "A START tool-integrated reasoner: it thinks, runs Python, thinks on.",
        "config": {},
        "context": {},
        "metadata": {},
        "version": 1,
        "created_at": iso(0),
        "updated_at": iso(0),
    }


def messages(thread: Thread, before: int | None = None) -> list[dict[str, Any]]:
    """The thread as LangChain message dicts: each turn's question, then its answer (none
    from turn `before` on, whose question alone is kept)."""
    out: list[dict[str, Any]] = []
    for turn in thread.turns:
        if before is not None and turn.index > before:
            break
        out.append(_message("human", turn.question, f"{turn.run_id}-q"))
        if turn.status != "running" and turn.index != before:
            reply = turn.reply or turn.answer or ""
            meta = {"run_id": turn.run_id, "answer": turn.answer, "status": turn.status}
            out.append(_message("ai", reply, turn.run_id, meta))
    return out


def _message(
    kind: str, content: str, message_id: str, meta: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "type": kind,
        "content": content,
        "id": message_id,
        "name": None,
        "additional_kwargs": {},
        "response_metadata": meta or {},
    }


def thread_json(thread: Thread) -> dict[str, Any]:
    last = thread.turns[-1] if thread.turns else None
    state = "busy" if last and last.status == "running" else "idle"
    if last and last.status == "error":
        state = "error"
    return {
        "thread_id": thread.id,
        "created_at": iso(thread.created_at),
        "updated_at": iso(thread.updated_at),
        "metadata": {"title": thread.title, "graph_id": GRAPH_ID, "assistant_id": ASSISTANT_ID},
        "status": state,
        "values": {"messages": messages(thread)},
        "interrupts": {},
    }


def run_json(thread: Thread, turn: Turn) -> dict[str, Any]:
    now = iso(thread.updated_at)
    return {
        "run_id": turn.run_id,
        "thread_id": thread.id,
        "assistant_id": ASSISTANT_ID,
        "created_at": now,
        "updated_at": now,
        "status": RUN_STATUS[turn.status],
        "metadata": {"turn": turn.index},
        "multitask_strategy": "reject",
    }


def _check_assistant(assistant_id: str) -> None:
    if assistant_id not in (ASSISTANT_ID, GRAPH_ID):
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"no assistant {assistant_id!r}; this server has one: {GRAPH_ID!r} ({ASSISTANT_ID})",
        )


@router.post("/assistants/search")
async def search_assistants(body: SearchBody, caller: CallerDep) -> list[dict[str, Any]]:
    return [assistant()][body.offset : body.offset + body.limit]


@router.get("/assistants/{assistant_id}")
async def get_assistant(assistant_id: str, caller: CallerDep) -> dict[str, Any]:
    _check_assistant(assistant_id)
    return assistant()


@router.post("/threads")
async def create_thread(
    body: ThreadBody, caller: CallerDep, conversations: ConversationsDep
) -> dict[str, Any]:
    title = (body.metadata or {}).get("title")
    thread = await conversations.threads.create(caller.owner, str(title) if title else None)
    return thread_json(thread)


@router.post("/threads/search")
async def search_threads(
    body: SearchBody, caller: CallerDep, conversations: ConversationsDep
) -> list[dict[str, Any]]:
    found = await conversations.threads.recent(caller.scope, body.offset + body.limit)
    threads = [await conversations.threads.get(t.id) for t in found[body.offset :]]
    return [thread_json(t) for t in threads if t is not None]


@router.get("/threads/{thread_id}")
async def get_thread(
    thread_id: str, caller: CallerDep, conversations: ConversationsDep
) -> dict[str, Any]:
    return thread_json(await owned_thread(thread_id, caller, conversations))


@router.get("/threads/{thread_id}/state")
async def thread_state(
    thread_id: str, caller: CallerDep, conversations: ConversationsDep, manager: Manager
) -> dict[str, Any]:
    """The thread's values, at its latest LangGraph checkpoint (one is written per turn)."""
    thread = await owned_thread(thread_id, caller, conversations)
    checkpoint: dict[str, Any] = {
        "thread_id": thread.id,
        "checkpoint_ns": "",
        "checkpoint_id": None,
    }
    parent, metadata, created = None, {}, None
    if manager.agent.checkpoints is not None:
        snapshot = await manager.agent.checkpoints.get(thread.id)
        checkpoint = {**checkpoint, **snapshot.config.get("configurable", {})}
        if snapshot.parent_config:
            parent = snapshot.parent_config.get("configurable")
        metadata, created = dict(snapshot.metadata or {}), snapshot.created_at
    return {
        "values": {"messages": messages(thread)},
        "next": [],
        "checkpoint": checkpoint,
        "metadata": metadata,
        "created_at": created,
        "parent_checkpoint": parent,
        "tasks": [],
        "interrupts": [],
    }


async def _start(
    thread: Thread, body: RunBody, manager: RunManager, settings: Settings
) -> tuple[str, int]:
    _check_assistant(body.assistant_id)
    run = body.run_request()
    options = capped_options(run, manager.agent.settings, settings)
    return await manager.start_turn(thread, run.question, options, run.thinking)


async def _thread(conversations: Conversations, thread_id: str) -> Thread:
    thread = await conversations.threads.get(thread_id)
    assert thread is not None
    return thread


async def _values(conversations: Conversations, thread_id: str) -> dict[str, Any]:
    return {"messages": messages(await _thread(conversations, thread_id))}


async def _thread_for(
    thread_id: str | None, caller: CallerDep, conversations: Conversations
) -> Thread:
    """The caller's thread, or a new one for a stateless run (`/runs/...`)."""
    if thread_id is None:
        return await conversations.threads.create(caller.owner, None)
    return await owned_thread(thread_id, caller, conversations)


def _path_thread_id(request: Request) -> str | None:
    """The `{thread_id}` of a thread's run route, None on a stateless one: read from the path,
    so that the stateless routes take no `thread_id` query parameter (which a plain
    `thread_id: str | None = None` would give them)."""
    return request.path_params.get("thread_id")


def _declare_thread_id(thread_id: Annotated[str, PathParam()]) -> None:
    """Puts the path's `thread_id` into the schema of a thread's run route."""


PathThreadId = Annotated[str | None, Depends(_path_thread_id)]
THREAD_ROUTE = [Depends(_declare_thread_id)]


@router.post("/threads/{thread_id}/runs")
async def create_run(
    thread_id: str,
    body: RunBody,
    caller: CallerDep,
    conversations: ConversationsDep,
    manager: Manager,
    settings: Settings,
) -> dict[str, Any]:
    """A background run: it goes on after the response; join or get it later."""
    thread = await owned_thread(thread_id, caller, conversations)
    await _start(thread, body, manager, settings)
    thread = await owned_thread(thread_id, caller, conversations)
    return run_json(thread, thread.turns[-1])


@router.get("/threads/{thread_id}/runs/{run_id}")
async def get_run(
    thread_id: str, run_id: str, caller: CallerDep, conversations: ConversationsDep
) -> dict[str, Any]:
    thread = await owned_thread(thread_id, caller, conversations)
    return run_json(thread, _turn(thread, run_id))


@router.get("/threads/{thread_id}/runs/{run_id}/join")
async def join_run(
    thread_id: str,
    run_id: str,
    caller: CallerDep,
    conversations: ConversationsDep,
    manager: Manager,
) -> dict[str, Any]:
    """Wait for the run to end; the thread's values then."""
    thread = await owned_thread(thread_id, caller, conversations)
    _turn(thread, run_id)
    await _finish(manager, run_id)
    return await _values(conversations, thread.id)


@router.post("/threads/{thread_id}/runs/wait", dependencies=THREAD_ROUTE)
@router.post("/runs/wait")
async def wait_run(
    thread_id: PathThreadId,
    body: RunBody,
    caller: CallerDep,
    conversations: ConversationsDep,
    manager: Manager,
    settings: Settings,
) -> dict[str, Any]:
    """A run on the thread (a new one when stateless), answered with the thread's values."""
    thread = await _thread_for(thread_id, caller, conversations)
    run_id, _ = await _start(thread, body, manager, settings)
    await _finish(manager, run_id)
    return await _values(conversations, thread.id)


@router.post(
    "/threads/{thread_id}/runs/stream",
    dependencies=THREAD_ROUTE,
    response_class=EventSourceResponse,
)
@router.post("/runs/stream", response_class=EventSourceResponse)
async def stream_run(
    thread_id: PathThreadId,
    body: RunBody,
    caller: CallerDep,
    conversations: ConversationsDep,
    manager: Manager,
    settings: Settings,
) -> EventSourceResponse:
    """A run on the thread (a new one when stateless), streamed in the asked modes."""
    thread = await _thread_for(thread_id, caller, conversations)
    return await _stream(thread, body, manager, settings, conversations)


async def _stream(
    thread: Thread,
    body: RunBody,
    manager: RunManager,
    settings: Settings,
    conversations: Conversations,
) -> EventSourceResponse:
    run_id, index = await _start(thread, body, manager, settings)
    modes = body.modes
    # The values as the turn starts: a fast turn can end before the response streams.
    before = {"messages": messages(await _thread(conversations, thread.id), before=index)}

    async def parts() -> AsyncIterator[ServerSentEvent]:
        yield _part("metadata", {"run_id": run_id, "attempt": 1})
        if "values" in modes:
            yield _part("values", before)
        code: dict[int, str] = {}
        async for event in manager.follow(run_id):
            if "custom" in modes:
                yield _part("custom", json.loads(event.model_dump_json()))
            if "updates" in modes and (update := _update(event, code)) is not None:
                yield _part("updates", update)
            if isinstance(event, RunFinished):
                break
        await manager.agent.store.flush() if manager.agent.store else None
        if "values" in modes:
            yield _part("values", await _values(conversations, thread.id))
        yield _part("end", None)

    return EventSourceResponse(parts(), ping=15)


def _update(event: Event, code: dict[int, str]) -> dict[str, Any] | None:
    """An `updates` part by node: each tool round (`execute`) and the answer (`finalize`)."""
    if isinstance(event, Code):
        code[event.index] = event.code
    elif isinstance(event, Execution):
        cell = {"index": event.index, "code": code.get(event.index), "output": event.output}
        return {"execute": {**cell, "status": str(event.status)}}
    elif isinstance(event, Answer):
        return {"finalize": {"messages": [_message("ai", event.text, event.run_id)]}}
    return None


def _part(event: str, data: Any) -> ServerSentEvent:
    return ServerSentEvent(data=json.dumps(data), event=event)


def _turn(thread: Thread, run_id: str) -> Turn:
    for turn in thread.turns:
        if turn.run_id == run_id:
            return turn
    raise HTTPException(status.HTTP_404_NOT_FOUND, f"no run {run_id!r} in thread {thread.id}")


async def _finish(manager: RunManager, run_id: str) -> RunStatus:
    """Wait for a run's end (bounded by the largest run timeout the server allows)."""
    async with asyncio.timeout(manager.agent.settings.timeout + 60):
        return (await manager.wait(run_id)).status
