"""The agent as a long-lived service: model client, template, sandbox pool, store, graph.

The CLI, the REST API and batch workers all open one `Agent` and call `solve` per question;
each run gets its own sandbox session, released however the run ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from types import TracebackType

import httpx
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.errors import GraphRecursionError

from agent.checkpoints import Checkpoints
from agent.events import Error, Event, RunFinished, RunStarted, RunStatus, Usage
from agent.graph import build_graph, recursion_limit
from agent.kinds import kind_of
from agent.settings import AgentSettings, RunOptions
from agent.state import AgentState, RunContext, initial_state
from agent.store import RunStore, connect
from model_host.client import CompletionClient, ModelRequestError, ModelUnavailable
from model_host.host import ensure_embedded_server, profile_for
from model_host.prepare import prepare_model
from model_host.settings import ModelSettings
from model_host.template import ChatTemplate
from sandbox.pool import SandboxError, SandboxPool, Session
from sandbox.settings import SandboxSettings


class QuestionError(ValueError):
    """The question cannot be run (empty, too long); the message says what to change."""


class Agent:
    def __init__(
        self,
        settings: AgentSettings | None = None,
        model: ModelSettings | None = None,
        sandbox: SandboxSettings | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings or AgentSettings()
        self.model_settings = model or ModelSettings()
        self.sandbox_settings = sandbox or SandboxSettings()
        self._progress = progress or (lambda _: None)
        self._stack = contextlib.AsyncExitStack()
        self.store: RunStore | None = None
        self.checkpoints: Checkpoints | None = None

    async def __aenter__(self) -> Agent:
        try:
            await self._open()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def _open(self) -> None:
        say, model = self._progress, self.model_settings
        base_url = await ensure_embedded_server(model, say)
        say(f"loading the chat template of {model.model}")
        model_dir = await asyncio.to_thread(prepare_model, model.model, model.home)
        self.template = await asyncio.to_thread(ChatTemplate.load, str(model_dir))
        self.profile = profile_for(model, model_dir)
        self.client = await self._stack.enter_async_context(
            CompletionClient(
                base_url,
                model.served_model_name,
                timeout=model.request_timeout,
                retries=model.retries,
                token_counter=self.template.count_tokens,
            )
        )
        say("starting the sandbox pool")
        self.pool = await self._stack.enter_async_context(SandboxPool(self.sandbox_settings))
        if self.settings.persist:
            self.store = await self._stack.enter_async_context(RunStore(self.settings.database))
            connection = await connect(self.settings.checkpoints)
            self._stack.push_async_callback(connection.close)
            self.checkpoints = Checkpoints(AsyncSqliteSaver(connection))
            self._stack.push_async_callback(self.checkpoints.flush)
        self.graph = build_graph()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()

    def prompt(self, question: str, kind: str) -> str:
        instruction = kind_of(kind).instruction
        return self.template.render([{"role": "user", "content": f"{question}\n\n{instruction}"}])

    def check_question(self, question: str) -> str:
        question = question.strip()
        if not question:
            raise QuestionError("the question is empty")
        if len(question) > self.settings.max_question_chars:
            raise QuestionError(
                f"the question has {len(question)} characters, over the limit of "
                f"{self.settings.max_question_chars} (STARTBOX_AGENT_MAX_QUESTION_CHARS)"
            )
        return question

    def _context(self, question: str, options: RunOptions, session: Session) -> RunContext:
        return RunContext(
            prompt=self.prompt(question, options.kind),
            options=options,
            client=self.client,
            session=session,
            profile=self.profile,
            count_tokens=self.template.count_tokens,
            round_tokens=self.settings.round_tokens,
            context_length=self.settings.context_length,
            context_margin=self.settings.context_margin,
            rng=random.Random(options.seed),
        )

    async def solve(
        self, question: str, options: RunOptions | None = None, run_id: str | None = None
    ) -> AsyncIterator[Event]:
        """Run one question; yields every event, ending with exactly one `run_finished`."""
        question = self.check_question(question)
        options = options or self.settings.run_options()
        run_id = run_id or uuid.uuid4().hex
        seq = 0
        state: AgentState = initial_state()
        started = time.perf_counter()
        status: RunStatus = "error"

        def emit(event: Event) -> Event:
            nonlocal seq
            seq += 1
            event.run_id, event.seq = run_id, seq
            if self.store is not None:
                self.store.append(event)
            return event

        if self.store is not None:
            self.store.create(run_id, question, options.model_dump())
        # the sandbox is released once the last event is out: the reader never waits on it
        async with self.pool.session(lazy=True) as session:
            try:
                yield emit(
                    RunStarted(
                        question=question,
                        options=options.model_dump(),
                        model=self.client.model,
                        profile=self.profile.name,
                    )
                )
                async with asyncio.timeout(options.timeout):
                    async for mode, chunk in self.graph.astream(
                        initial_state(),
                        {"recursion_limit": recursion_limit(options, self.settings.round_tokens)},
                        context=self._context(question, options, session),
                        stream_mode=["custom", "values"],
                    ):
                        if mode == "values":
                            state = chunk
                        else:
                            yield emit(chunk)
                status = "ok"
            except (asyncio.CancelledError, GeneratorExit):  # cancelled, or the reader went away
                status = "cancelled"
                raise
            except Exception as exc:  # every failure ends the run with an event, never a hang
                yield emit(Error(message=describe(exc, options), where=type(exc).__name__))
            finally:
                finished = RunFinished(
                    status=status,
                    answer=state["answer"],
                    usage=usage_of(state),
                    timings_ms={
                        **state["timings_ms"],
                        "total": (time.perf_counter() - started) * 1000,
                    },
                )
                event = emit(finished)
                if self.store is not None:
                    self.store.finish(run_id, status, state["answer"])
                    prompt = self.prompt(question, options.kind)
                    self.store.save_segments(run_id, prompt, state["segments"])
                if self.checkpoints is not None:
                    self.checkpoints.save(run_id, state)
            yield event


def usage_of(state: AgentState) -> Usage:
    return Usage(
        prompt_tokens=state["prompt_tokens"],
        completion_tokens=state["completion_tokens"],
        thinking_tokens=state["thinking_tokens"],
        answer_tokens=state["answer_tokens"],
        model_calls=state["model_calls"],
        tool_calls=state["tool_calls"],
        hints=state["hints"],
    )


def describe(exc: Exception, options: RunOptions) -> str:
    """A message that says what failed and what to do about it."""
    if isinstance(exc, TimeoutError):
        return f"the run exceeded its {options.timeout:g} s timeout (raise --timeout)"
    if isinstance(exc, GraphRecursionError):
        return "the run took more steps than its limits allow; the model is looping"
    if isinstance(exc, ModelUnavailable | ModelRequestError | SandboxError):
        return str(exc)
    if isinstance(exc, httpx.HTTPError):
        return f"the model server failed mid-run: {exc!r}"
    return f"unexpected {type(exc).__name__}: {exc}"
