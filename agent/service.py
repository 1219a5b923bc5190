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
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import cast

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.errors import GraphRecursionError

from agent.checkpoints import Checkpoints
from agent.errors import AgentError
from agent.errors import StoreUnavailable as StoreUnavailable  # raised here by the API manager
from agent.events import (
    ContextTrimmed,
    Error,
    Event,
    RunFinished,
    RunStarted,
    RunStatus,
    Usage,
)
from agent.graph import build_graph, recursion_limit
from agent.kinds import kind_of
from agent.settings import AgentSettings, RunOptions
from agent.state import AgentState, RunContext, initial_state
from agent.store import RunStore, connect
from model_host.client import CompletionClient, ModelRequestError, ModelUnavailable
from model_host.host import ensure_embedded_server, profile_for
from model_host.prepare import prepare_model
from model_host.profiles import Sampling, SamplingOverrides, ThinkingMode
from model_host.settings import ModelSettings
from model_host.template import ChatTemplate
from sandbox.pool import SandboxError, SandboxPool, Session
from sandbox.settings import SandboxSettings


class QuestionError(AgentError, ValueError):
    """The question cannot be run (empty, too long); the message says what to change."""


Message = dict[str, str]  # {"role": ..., "content": ...}, as chat templates take them
Setup = Callable[[], Awaitable[list[Event]]]


@dataclass
class Prompt:
    text: str
    dropped_turns: int  # earlier turns left out so that the prompt fits the context window
    thinking: ThinkingMode


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

    def prompt(
        self,
        question: str,
        options: RunOptions,
        history: Sequence[Message] = (),
        thinking: bool | None = None,
    ) -> Prompt:
        """The question after the earlier messages, rendered with the model's own template.
        Earlier turns (a user message and what follows it) are dropped oldest first until the
        prompt leaves room for the run's budgets; the first kept message says so."""
        instruction = kind_of(options.kind).instruction
        mode = self.profile.thinking_mode(thinking, question)
        system = [m for m in history if m["role"] == "system"]
        turns = _turns([m for m in history if m["role"] != "system"])
        last = {"role": "user", "content": f"{question}\n\n{instruction}"}
        budget = options.answer_budget + (options.thinking_budget if mode.enabled else 0)
        room = self.settings.context_length - self.settings.context_margin
        room -= min(budget, room // 2)  # a long history may take at most half the window
        dropped = 0
        while True:
            kept = [m for turn in turns[dropped:] for m in turn]
            if dropped and kept:
                note = f"(The {dropped} earliest turns of this conversation were left out.)\n\n"
                kept[0] = {**kept[0], "content": note + kept[0]["content"]}
            text = self.template.render([*system, *kept, last], **mode.template_kwargs)
            if mode.enabled is False and not text.rstrip().endswith(str(self.profile.think_end)):
                text += self.profile.no_think_prefill  # a template that knows no switch
            if dropped >= len(turns) or self.template.count_tokens(text) <= room:
                return Prompt(text=text, dropped_turns=dropped, thinking=mode)
            dropped += 1

    def used(self, options: RunOptions) -> RunOptions:
        """The options with the sampling the run will use, whatever set it: what the run store,
        `run_started` and trajectories record."""
        sampling = SamplingOverrides.model_validate(self.sampling(options).model_dump())
        return options.model_copy(update={"sampling": sampling})

    async def store_problem(self) -> str | None:
        """Why the run store cannot keep a run now (None: it can, or there is none)."""
        return None if self.store is None else await self.store.health()

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

    def sampling(self, options: RunOptions) -> Sampling:
        """The run's sampling: its own choices over the configured default and the profile's
        (both already in `self.profile.sampling`, see `profile_for`)."""
        return self.profile.sampling.overridden(options.sampling)

    def _context(self, prompt: str, options: RunOptions, session: Session) -> RunContext:
        return RunContext(
            prompt=prompt,
            options=options,
            client=self.client,
            session=session,
            profile=self.profile,
            sampling=self.sampling(options),
            count_tokens=self.template.count_tokens,
            round_tokens=self.settings.round_tokens,
            context_length=self.settings.context_length,
            context_margin=self.settings.context_margin,
            rng=random.Random(options.seed),
        )

    async def solve(
        self,
        question: str,
        options: RunOptions | None = None,
        run_id: str | None = None,
        *,
        history: Sequence[Message] = (),
        thinking: bool | None = None,
        owner: str = "",
        session: Session | None = None,
        setup: Setup | None = None,
        conversation: str | None = None,
    ) -> AsyncGenerator[Event, None]:
        """Run one question; yields every event, ending with exactly one `run_finished`.

        `history` holds the earlier messages of a conversation (system, user, assistant);
        `session` a sandbox session that outlives the run (a thread's kernel), else the run
        gets its own; `setup` runs after run_started (a kernel replay) and its events follow;
        `conversation` checkpoints the run as a turn of that LangGraph thread (else its own).
        """
        question = self.check_question(question)
        options = self.used(options or self.settings.run_options())
        run_id = run_id or uuid.uuid4().hex
        prompt = self.prompt(question, options, history, thinking)
        seq = 0
        first: AgentState = initial_state()
        if prompt.thinking.enabled is False:
            first["phase"] = "answer"
        state = first
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
            self.store.create(run_id, question, options.model_dump(), owner)
        async with contextlib.AsyncExitStack() as stack:
            if session is None:  # released once the last event is out: no reader waits on it
                # a key's runs may reuse its own recycled containers, never another key's
                tenant = owner or None
                session = await stack.enter_async_context(self.pool.session(tenant, lazy=True))
            try:
                yield emit(
                    RunStarted(
                        question=question,
                        options=options.model_dump(),
                        model=self.client.model,
                        profile=self.profile.name,
                        thinking=prompt.thinking.enabled,
                        notes=[prompt.thinking.note] if prompt.thinking.note else [],
                    )
                )
                if prompt.dropped_turns:
                    yield emit(ContextTrimmed(dropped_turns=prompt.dropped_turns))
                async with asyncio.timeout(options.timeout):
                    for event in await setup() if setup else []:
                        yield emit(event)
                    async for mode, chunk in self.graph.astream(
                        first,
                        {"recursion_limit": recursion_limit(options, self.settings.round_tokens)},
                        context=self._context(prompt.text, options, session),
                        stream_mode=["custom", "values"],
                    ):
                        if mode == "values":
                            state = cast(AgentState, chunk)
                        else:
                            yield emit(cast(Event, chunk))
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
                    self.store.save_segments(run_id, prompt.text, state["segments"])
                if self.checkpoints is not None:
                    self.checkpoints.save(conversation or run_id, state, run_id)
            yield event


def _turns(messages: list[Message]) -> list[list[Message]]:
    """Messages grouped into turns, each starting at a user message."""
    turns: list[list[Message]] = []
    for message in messages:
        if message["role"] == "user" or not turns:
            turns.append([])
        turns[-1].append(message)
    return turns


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
    return f"unexpected {type(exc).__name__}: {exc}"
