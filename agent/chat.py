"""`startbox chat`: a conversation in the terminal, on the same thread machinery as the API.

In-process (an Agent, its thread store and kernels, here) or against a running API
(`--api-url`). Commands: /new, /fork N, /think on|off|default, /quit. Ctrl-C cancels the turn
in progress, not the program; Ctrl-D or /quit leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import AsyncIterator
from typing import Protocol

import httpx
from rich.console import Console

from agent.conversation import Conversations
from agent.events import (
    EVENT_ADAPTER,
    ContextTrimmed,
    Event,
    KernelLost,
    KernelRestored,
    RunStarted,
)
from agent.render import TraceRenderer
from agent.service import Agent
from agent.settings import RunOptions
from agent.threads import ThreadStore
from model_host.profiles import SamplingOverrides

LOCAL_OWNER = "local"  # the owner of threads made by in-process chats
HELP = "/new · /fork N · /think on|off|default · /quit (Ctrl-C cancels a turn)"


class Backend(Protocol):
    async def new_thread(self) -> str: ...
    async def fork(self, thread_id: str, turn: int) -> str: ...
    def turn(
        self, thread_id: str, question: str, thinking: bool | None
    ) -> AsyncIterator[Event]: ...


class Local:
    def __init__(self, agent: Agent, conversations: Conversations, options: RunOptions) -> None:
        self.agent, self.conversations, self.options = agent, conversations, options

    async def new_thread(self) -> str:
        return (await self.conversations.threads.create(LOCAL_OWNER, "chat")).id

    async def fork(self, thread_id: str, turn: int) -> str:
        thread = await self.conversations.threads.get(thread_id)
        assert thread is not None
        if not 1 <= turn <= len(thread.turns):
            raise ValueError(f"this thread has {len(thread.turns)} turns; fork at 1..")
        return (await self.conversations.threads.fork(thread, turn, LOCAL_OWNER)).id

    async def turn(
        self, thread_id: str, question: str, thinking: bool | None
    ) -> AsyncIterator[Event]:
        import uuid

        thread = await self.conversations.threads.get(thread_id)
        assert thread is not None
        question = self.agent.check_question(question)
        run_id = uuid.uuid4().hex
        index = await self.conversations.begin(thread, run_id, question, thinking)
        async for event in self.conversations.turn(
            thread, index, question, self.options, thinking, run_id
        ):
            yield event


class Remote:
    def __init__(self, client: httpx.AsyncClient, sampling: SamplingOverrides) -> None:
        self.client, self.sampling = client, sampling

    async def _post(self, path: str, body: dict[str, object]) -> dict[str, object]:
        response = await self.client.post(path, json=body)
        if response.status_code >= 400:
            raise ValueError(f"{response.status_code}: {response.json().get('detail')}")
        return dict(response.json())

    async def new_thread(self) -> str:
        return str((await self._post("/v1/threads", {"title": "chat"}))["id"])

    async def fork(self, thread_id: str, turn: int) -> str:
        return str((await self._post(f"/v1/threads/{thread_id}/fork", {"turn": turn}))["id"])

    async def turn(
        self, thread_id: str, question: str, thinking: bool | None
    ) -> AsyncIterator[Event]:
        body: dict[str, object] = {
            "question": question,
            "thinking": thinking,
            "sampling": self.sampling.model_dump(exclude_none=True),
        }
        run_id = str((await self._post(f"/v1/threads/{thread_id}/runs", body))["id"])
        try:
            async with self.client.stream("GET", f"/v1/runs/{run_id}/events") as response:
                async for line in response.aiter_lines():
                    if line.startswith("data:"):
                        yield EVENT_ADAPTER.validate_python(json.loads(line[5:]))
        except asyncio.CancelledError:  # Ctrl-C: the server stops the turn too
            with contextlib.suppress(httpx.HTTPError):
                await asyncio.shield(self.client.post(f"/v1/runs/{run_id}/cancel"))
            raise


async def converse(backend: Backend, console: Console, thinking: bool | None) -> None:
    """The read-answer loop; a turn runs as a task that SIGINT cancels."""
    thread_id = await backend.new_thread()
    console.print(f"[dim]thread {thread_id} · {HELP}")
    loop = asyncio.get_running_loop()
    current: asyncio.Task[None] | None = None

    def interrupt() -> None:
        if current is not None and not current.done():
            current.cancel()
        else:
            console.print("\n[dim](Ctrl-D or /quit leaves)")

    loop.add_signal_handler(signal.SIGINT, interrupt)
    try:
        while True:
            try:
                line = (await asyncio.to_thread(input, "you> ")).strip()
            except EOFError:
                return
            if not line:
                continue
            if line.startswith("/"):
                command, _, argument = line.partition(" ")
                if command == "/quit":
                    return
                try:
                    if command == "/new":
                        thread_id = await backend.new_thread()
                    elif command == "/fork":
                        thread_id = await backend.fork(thread_id, int(argument))
                    elif command == "/think" and argument in ("on", "off", "default"):
                        thinking = {"on": True, "off": False, "default": None}[argument]
                    else:
                        console.print(f"[yellow]{HELP}")
                        continue
                except ValueError as exc:
                    console.print(f"[red]error:[/] {exc}")
                    continue
                console.print(f"[dim]thread {thread_id} · thinking {_mode(thinking)}")
                continue
            current = asyncio.create_task(_show(backend, thread_id, line, thinking, console))
            try:
                await current
            except asyncio.CancelledError:
                console.print("[yellow]turn cancelled")
            except ValueError as exc:
                console.print(f"[red]error:[/] {exc}")
            finally:
                current = None
    finally:
        loop.remove_signal_handler(signal.SIGINT)


async def _show(
    backend: Backend, thread_id: str, question: str, thinking: bool | None, console: Console
) -> None:
    renderer: TraceRenderer | None = None
    try:
        async for event in backend.turn(thread_id, question, thinking):
            if isinstance(event, RunStarted):
                options = event.options
                renderer = TraceRenderer(
                    console, int(options["thinking_budget"]), int(options["answer_budget"])
                ).__enter__()
                for note in event.notes:
                    console.print(f"[yellow]note: {note}")
            if isinstance(event, KernelRestored):
                console.print(f"[dim]kernel restored from {event.cells} cell(s) by replay")
            elif isinstance(event, KernelLost):
                console.print(f"[yellow]kernel lost, starting fresh: {event.reason}")
            elif isinstance(event, ContextTrimmed):
                console.print(f"[dim]{event.dropped_turns} earliest turn(s) left out of the prompt")
            if renderer is not None:
                renderer.feed(event)
    finally:
        if renderer is not None:
            renderer.__exit__(None, None, None)


def _mode(thinking: bool | None) -> str:
    return "default" if thinking is None else ("on" if thinking else "off")


async def run_local(
    agent: Agent, options: RunOptions, console: Console, thinking: bool | None
) -> None:
    assert agent.store is not None, "chat needs the run store (STARTBOX_AGENT_PERSIST=1)"
    async with ThreadStore(agent.store) as threads, Conversations(agent, threads) as conversations:
        await converse(Local(agent, conversations, options), console, thinking)


async def run_remote(
    url: str, key: str | None, console: Console, thinking: bool | None, sampling: SamplingOverrides
) -> None:
    headers = {"x-api-key": key} if key else {}
    timeout = httpx.Timeout(30, read=None)  # a turn's event stream may idle while code runs
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=timeout) as client:
        await converse(Remote(client, sampling), console, thinking)
