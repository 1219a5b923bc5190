"""The OpenAI chat-completions bodies the facade takes and gives, as pydantic models."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from agent.kinds import KINDS
from model_host.profiles import SamplingOverrides

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]


class ContentPart(BaseModel):
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    role: Role
    content: str | list[ContentPart] | None = None

    @property
    def text(self) -> str:
        """The message's text: the string, or its text parts joined (images are not read)."""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(p.text for p in self.content or [] if p.type == "text" and p.text)


class ChatRequest(SamplingOverrides):
    """The OpenAI fields the facade honours. Sampling: OpenAI's temperature, top_p and
    presence_penalty, and vLLM's extras top_k, min_p and repetition_penalty (the fields of
    SamplingOverrides, inherited so they are not listed twice, with its bounds: top_p 0, which
    OpenAI takes, is refused), over the server's default. Other OpenAI fields are accepted and
    ignored; agent settings ride along as extra fields (the `extra_body` of OpenAI clients)."""

    model_config = ConfigDict(allow_inf_nan=False, extra="ignore")

    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    max_tokens: int | None = Field(None, ge=1, description="Bounds thinking and answer.")
    max_completion_tokens: int | None = Field(None, ge=1, description="As max_tokens.")
    seed: int | None = None
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high"] | None = Field(
        None, description="none/minimal: no thinking; low/medium/high: thinking."
    )
    chat_template_kwargs: dict[str, bool | int | str] | None = Field(
        None, description="As vLLM's: enable_thinking switches thinking."
    )
    thread_id: str | None = Field(
        None, description="A thread (POST /v1/threads) whose kernel this chat's code uses."
    )
    thinking_budget: int | None = Field(None, ge=0)
    max_tool_calls: int | None = Field(None, ge=0)
    min_tool_calls: int | None = Field(None, ge=0)
    hint_rounds: int | None = Field(None, ge=0)

    @property
    def thinking(self) -> bool | None:
        kwargs = self.chat_template_kwargs or {}
        if "enable_thinking" in kwargs:
            return bool(kwargs["enable_thinking"])
        if self.reasoning_effort is not None:
            return self.reasoning_effort not in ("none", "minimal")
        return None

    @property
    def output_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    @property
    def sampling(self) -> SamplingOverrides:
        return SamplingOverrides.model_validate(
            self.model_dump(include=set(SamplingOverrides.model_fields))
        )


class CompletionTokensDetails(BaseModel):
    reasoning_tokens: int


class CompletionUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    completion_tokens_details: CompletionTokensDetails


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    reasoning_content: str = Field(description="The thinking and tool trace (vLLM's name).")
    reasoning: str = Field(description="The same, by the newer name.")


FinishReason = Literal["stop", "length", "error"]


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: FinishReason


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: CompletionUsage


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: FinishReason | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: CompletionUsage | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "startbox"
    # startbox's problem kinds (name -> what the answer is), so clients need not spell them
    kinds: dict[str, str] = Field(
        default_factory=lambda: {k.name: k.summary for k in KINDS.values()}
    )


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
