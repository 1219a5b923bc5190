"""Threads: conversations whose turns share a kernel (contract: notes/THREADS_API.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status

from agent.api.deps import CallerDep, ConversationsDep, Manager, Settings
from agent.api.limits import capped_options
from agent.api.schemas import RunRequest, ThreadCreate, ThreadFork, ThreadList, TurnCreated
from agent.threads import Thread

router = APIRouter(prefix="/v1", tags=["threads"])


async def owned_thread(
    thread_id: str, caller: CallerDep, conversations: ConversationsDep
) -> Thread:
    """The thread, if the caller may see it; another key's thread is a 404."""
    thread = await conversations.threads.get(thread_id)
    if thread is None or not caller.may_see(thread.owner):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no thread with id {thread_id!r}")
    return thread


OwnedThread = Annotated[Thread, Depends(owned_thread)]


@router.post("/threads", status_code=status.HTTP_201_CREATED)
async def create_thread(
    body: ThreadCreate, caller: CallerDep, conversations: ConversationsDep
) -> Thread:
    return await conversations.threads.create(caller.owner, body.title)


@router.get("/threads")
async def list_threads(
    caller: CallerDep,
    conversations: ConversationsDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
) -> ThreadList:
    """The caller's threads, newest first (an admin key: everyone's)."""
    return ThreadList(threads=await conversations.threads.recent(caller.scope, limit))


@router.get("/threads/{thread_id}")
async def get_thread(thread: OwnedThread) -> Thread:
    return thread


@router.delete("/threads/{thread_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_thread(thread: OwnedThread, conversations: ConversationsDep) -> Response:
    """Forget the thread (its runs stay readable by id) and release its kernel. Not while a
    turn runs: its kernel and its record are still being written."""
    if conversations.busy(thread.id):
        running = thread.turns[-1].run_id if thread.turns else "?"
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"thread {thread.id} is still answering a turn; cancel it (POST "
            f"/v1/runs/{running}/cancel) or wait for it to end, then delete",
        )
    await conversations.release(thread.id)
    await conversations.threads.delete(thread.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/threads/{thread_id}/runs", status_code=status.HTTP_201_CREATED)
async def start_turn(
    body: RunRequest, thread: OwnedThread, manager: Manager, settings: Settings
) -> TurnCreated:
    """The thread's next turn; its events stream as a run's (GET /v1/runs/{id}/events)."""
    options = capped_options(body, manager.agent.settings, settings)
    run_id, turn = await manager.start_turn(thread, body.question, options, body.thinking)
    return TurnCreated(id=run_id, status="running", thread_id=thread.id, turn=turn)


@router.post("/threads/{thread_id}/fork", status_code=status.HTTP_201_CREATED)
async def fork_thread(
    body: ThreadFork, thread: OwnedThread, caller: CallerDep, conversations: ConversationsDep
) -> Thread:
    """A new thread of the caller with turns 1..turn. Its kernel is rebuilt by replay at its
    first turn (`kernel_restored`), not here: a fork nobody continues holds no sandbox, and
    several forks of one turn each replay into their own. A turn still running cannot be
    forked: its cells and answer are not all there yet."""
    if body.turn > len(thread.turns):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY,
            f"thread {thread.id} has {len(thread.turns)} turns; fork at 1..{len(thread.turns)}",
        )
    if thread.turns[body.turn - 1].status == "running":
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"turn {body.turn} of thread {thread.id} is still running; fork it once it ends",
        )
    return await conversations.threads.fork(thread, body.turn, caller.owner)
