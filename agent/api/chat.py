"""An OpenAI-compatible facade, so any OpenAI client can use the agent as a model.

Thinking and the tool trace travel as `reasoning_content` (and `reasoning`, the newer name);
the answer as `content`.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import StreamingResponse

from agent.api.auth import require_key
from agent.api.limits import capped_options
from agent.api.manager import RunManager
from agent.api.schemas import ChatRequest, RunRequest
from agent.events import Answer, Error, Event, Execution, Hint, RunFinished, ThinkingDelta

router = APIRouter(prefix="/v1", dependencies=[Depends(require_key)])
MODEL_PREFIX = "startbox"


def model_id(manager: RunManager) -> str:
    return f"{MODEL_PREFIX}/{manager.agent.client.model}"


@router.get("/models")
async def models(request: Request) -> dict[str, Any]:
    manager: RunManager = request.app.state.manager
    entry = {"id": model_id(manager), "object": "model", "created": 0, "owned_by": "startbox"}
    return {"object": "list", "data": [entry]}


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


@router.post("/chat/completions", response_model=None)
async def chat_completions(
    body: ChatRequest, request: Request
) -> dict[str, Any] | StreamingResponse:
    manager: RunManager = request.app.state.manager
    question = last_user_text(body)
    run = RunRequest(
        question=question,
        answer_budget=body.max_completion_tokens or body.max_tokens,
        seed=body.seed,
        thinking_budget=body.thinking_budget,
        max_tool_calls=body.max_tool_calls,
        min_tool_calls=body.min_tool_calls,
        hint_rounds=body.hint_rounds,
    )
    options = capped_options(run, manager.agent.settings, request.app.state.settings)
    run_id = manager.start(question, options)
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
    message = {
        "role": "assistant",
        "content": content or final_content(answer),
        "reasoning_content": reasoning,
        "reasoning": reasoning,
    }
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": usage(finished),
    }


async def stream_chunks(
    manager: RunManager, run_id: str, completion_id: str, created: int, model: str
) -> AsyncIterator[str]:
    def chunk(delta: dict[str, str], finish: str | None = None, **extra: Any) -> str:
        body = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(body)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    sent_content = False
    answer: Answer | None = None
    async for event in manager.follow(run_id):
        reasoning, content = trace_text(event)
        if reasoning:
            yield chunk({"reasoning_content": reasoning, "reasoning": reasoning})
        if content:
            sent_content = True
            yield chunk({"content": content})
        if isinstance(event, Answer):
            answer = event
        if isinstance(event, RunFinished):
            if not sent_content and final_content(answer):
                yield chunk({"content": final_content(answer)})
            finish = "stop" if event.status == "ok" else "error"
            yield chunk({}, finish, usage=usage(event))
    yield "data: [DONE]\n\n"


def last_user_text(body: ChatRequest) -> str:
    for message in reversed(body.messages):
        if message.role != "user":
            continue
        if isinstance(message.content, str):
            text = message.content
        else:
            parts = [p.get("text") for p in message.content or [] if p.get("type") == "text"]
            text = "\n".join(str(p) for p in parts if p)
        if text.strip():
            return text
        break
    raise HTTPException(
        status.HTTP_422_UNPROCESSABLE_ENTITY, "the last user message must carry text to answer"
    )


def final_content(answer: Answer | None) -> str:
    if answer is None:
        return ""
    if answer.extracted and answer.answer:
        return f"\\boxed{{{answer.answer}}}"
    return answer.text


def usage(finished: RunFinished) -> dict[str, int]:
    u = finished.usage
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.prompt_tokens + u.completion_tokens,
    }
