"""An OpenAI-compatible facade, so any OpenAI client can use the agent as a model.

The whole message list is honoured: system prompts and earlier turns become the prompt's
history (rendered with the model's template), the last user message is the question. Thinking
and the tool trace travel as `reasoning_content` (and `reasoning`, the newer name); the answer
as `content`. `max_tokens` bounds the whole output, thinking included.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import StreamingResponse

from agent.api.deps import CallerDep, Manager, Settings, conversations_of
from agent.api.limits import capped_options
from agent.api.manager import RunManager
from agent.api.openai_schemas import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatRequest,
    Choice,
    ChunkChoice,
    CompletionTokensDetails,
    CompletionUsage,
    Delta,
    FinishReason,
    ModelCard,
    ModelList,
)
from agent.api.routers.threads import owned_thread
from agent.api.schemas import RunRequest
from agent.api.settings import ApiSettings
from agent.events import Answer, Error, Event, Execution, Hint, RunFinished, ThinkingDelta
from agent.service import Message
from agent.settings import AgentSettings

router = APIRouter(prefix="/v1", tags=["openai"])
MODEL_PREFIX = "startbox"
ANSWER_SHARE = 4  # with a total bound, the answer may take up to 1/4 of it (and its default)


def model_id(manager: RunManager) -> str:
    return f"{MODEL_PREFIX}/{manager.agent.client.model}"


@router.get("/models")
async def models(caller: CallerDep, manager: Manager) -> ModelList:
    return ModelList(data=[ModelCard(id=model_id(manager))])


def trace_text(event: Event) -> tuple[str, str]:
    """(reasoning, content) text that an event adds to the chat message."""
    match event:
        case ThinkingDelta(phase="thinking"):
            return event.text, ""
        case ThinkingDelta():
            return "", event.text
        case Hint():
            return event.text, ""
        case Execution():
            return f"\n```output\n{event.output}\n```\n", ""
        case Error():
            return f"\n[error: {event.message}]\n", ""
    return "", ""


def conversation(body: ChatRequest) -> tuple[list[Message], str]:
    """The history (system prompts, earlier user and assistant turns) and the question."""
    last = body.messages[-1]
    if last.role != "user" or not last.text.strip():
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY, "the last message must be a user's, with text"
        )
    history: list[Message] = []
    for message in body.messages[:-1]:
        role = "system" if message.role in ("system", "developer") else message.role
        if role in ("system", "user", "assistant") and message.text:
            history.append({"role": role, "content": message.text})
    return history, last.text


def budgets(body: ChatRequest, thinks: bool, agent: AgentSettings, api: ApiSettings) -> RunRequest:
    """The run's budgets: a total output bound split between thinking and the answer, within
    the server's caps, so thinking tokens + answer tokens never exceed it."""
    limit = body.output_limit
    thinking_budget, answer_budget = body.thinking_budget, None
    if limit is not None:
        answer_budget = min(agent.answer_budget, api.max_answer_budget, limit)
        if thinks:
            answer_budget = min(answer_budget, max(1, limit // ANSWER_SHARE))
            cap = min(api.max_thinking_budget, thinking_budget or agent.thinking_budget)
            thinking_budget = min(cap, limit - answer_budget)
        else:
            thinking_budget = 0
    return RunRequest(
        question="-",
        answer_budget=answer_budget,
        thinking_budget=thinking_budget,
        seed=body.seed,
        max_tool_calls=body.max_tool_calls,
        min_tool_calls=body.min_tool_calls,
        hint_rounds=body.hint_rounds,
        sampling=body.sampling,
    )


@router.post("/chat/completions", response_model=None)
async def chat_completions(
    body: ChatRequest,
    caller: CallerDep,
    manager: Manager,
    settings: Settings,
) -> ChatCompletion | StreamingResponse:
    history, question = conversation(body)
    agent = manager.agent
    mode = agent.profile.thinking_mode(body.thinking, question)
    run = budgets(body, mode.enabled is not False, agent.settings, settings)
    options = capped_options(run, agent.settings, settings)
    if body.thread_id is not None:
        thread = await owned_thread(body.thread_id, caller, conversations_of(manager))
        run_id, _ = await manager.start_turn(thread, question, options, body.thinking, history)
    else:
        run_id = await manager.start(
            question, options, caller.owner, history=history, thinking=body.thinking
        )
    completion_id, created, model = f"chatcmpl-{run_id}", int(time.time()), model_id(manager)
    if body.stream:
        chunks = stream_chunks(manager, run_id, completion_id, created, model)
        return StreamingResponse(chunks, media_type="text/event-stream")
    reasoning, content, answer, finished = "", "", None, None
    async for event in manager.follow(run_id):
        more_reasoning, more_content = trace_text(event)
        reasoning, content = reasoning + more_reasoning, content + more_content
        if isinstance(event, Answer):
            answer = event
        if isinstance(event, RunFinished):
            finished = event
    assert finished is not None
    if finished.status != "ok":
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"the run ended with {finished.status}")
    message = AssistantMessage(
        content=content or final_content(answer), reasoning_content=reasoning, reasoning=reasoning
    )
    return ChatCompletion(
        id=completion_id,
        created=created,
        model=model,
        choices=[Choice(message=message, finish_reason=finish_reason(finished, answer))],
        usage=usage(finished),
    )


async def stream_chunks(
    manager: RunManager, run_id: str, completion_id: str, created: int, model: str
) -> AsyncIterator[str]:
    def chunk(
        delta: Delta, finish: FinishReason | None = None, usage: CompletionUsage | None = None
    ) -> str:
        body = ChatCompletionChunk(
            id=completion_id,
            created=created,
            model=model,
            choices=[ChunkChoice(delta=delta, finish_reason=finish)],
            usage=usage,
        )
        return f"data: {body.model_dump_json(exclude_none=True)}\n\n"

    yield chunk(Delta(role="assistant", content=""))
    sent_content = False
    answer: Answer | None = None
    async for event in manager.follow(run_id):
        reasoning, content = trace_text(event)
        if reasoning:
            yield chunk(Delta(reasoning_content=reasoning, reasoning=reasoning))
        if content:
            sent_content = True
            yield chunk(Delta(content=content))
        if isinstance(event, Answer):
            answer = event
        if isinstance(event, RunFinished):
            if not sent_content and final_content(answer):
                yield chunk(Delta(content=final_content(answer)))
            yield chunk(Delta(), finish_reason(event, answer), usage(event))
    yield "data: [DONE]\n\n"


def final_content(answer: Answer | None) -> str:
    if answer is None:
        return ""
    if answer.extracted and answer.answer:
        return f"\\boxed{{{answer.answer}}}"
    return answer.text


def finish_reason(finished: RunFinished, answer: Answer | None) -> FinishReason:
    if finished.status != "ok":
        return "error"
    return "length" if answer is not None and answer.stop_cause in ("budget", "context") else "stop"


def usage(finished: RunFinished) -> CompletionUsage:
    u = finished.usage
    return CompletionUsage(
        prompt_tokens=u.prompt_tokens,
        completion_tokens=u.completion_tokens,
        total_tokens=u.prompt_tokens + u.completion_tokens,
        completion_tokens_details=CompletionTokensDetails(reasoning_tokens=u.thinking_tokens),
    )
