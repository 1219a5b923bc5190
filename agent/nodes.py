"""The START loop's nodes. Each returns a `Command`: its state update and the node to go to.

Routing by Command, not by conditional edges on a state field: the node that decides already
knows where the run goes, and LangGraph then runs no separate routing step per round.

generate  -> one continuing model call; decides whether code closed, thinking ended, the model
             stopped, or a budget ran out
execute   -> runs the closed code block in the run's sandbox session, appends the output fence
hint      -> Hint-infer: appends a hint that ends in an open code fence
force_answer -> the thinking budget is spent: appends the early-stop text
finalize  -> extracts the answer
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, Protocol

from langgraph.graph import END
from langgraph.runtime import Runtime
from langgraph.types import Command

from agent import segments as seg
from agent.events import (
    Answer,
    BudgetExhausted,
    Code,
    Execution,
    Hint,
    ThinkingDelta,
)
from agent.kinds import kind_of
from agent.state import AgentState, Route, RunContext
from model_host.client import Completion
from model_host.profiles import ModelProfile
from sandbox.result import ExecResult, Status

HINT_WORD = re.compile(r"(?<![A-Za-z])(Wait|Alternatively)\b")
HOLD_BACK = len("Alternatively")
MIN_ROUND = 16  # tokens: a call allowed fewer than this ends the run at the context guard

Step = Command[str]  # a Route, or END from finalize


class Node(Protocol):
    """A node as LangGraph calls it: `state` by position, `runtime` by name (a plain Callable
    type names neither, so it would not match StateGraph.add_node's node protocols)."""

    def __call__(self, state: AgentState, runtime: Runtime[RunContext]) -> Awaitable[Step]: ...


def go(to: Route, **update: Any) -> Step:
    return Command(goto=to, update=update)


def timed(name: str) -> Callable[[Node], Node]:
    """Adds the node's wall time to `timings_ms[name]` in the update it returns."""

    def wrap(node: Node) -> Node:
        @wraps(node)
        async def run(state: AgentState, runtime: Runtime[RunContext]) -> Step:
            started = time.perf_counter()
            step = await node(state, runtime)
            update = dict(step.update or {})
            timings = dict(update.get("timings_ms", state["timings_ms"]))
            timings[name] = timings.get(name, 0.0) + (time.perf_counter() - started) * 1000
            return Command(goto=step.goto, update={**update, "timings_ms": timings})

        return run

    return wrap


def tokens_at_most(text: str) -> int:
    """A bound that needs no tokenizer: a token covers at least one UTF-8 byte (byte-level BPE,
    SentencePiece with byte fallback), plus one for SentencePiece's leading-space piece."""
    return len(text.encode()) + 1


def close_fence(profile: ModelProfile) -> str:
    """The stop string that ends a code block: its closing fence on a line of its own."""
    return f"\n{profile.code_end}\n"


def open_code(transcript: str, profile: ModelProfile) -> str | None:
    """The code of a python block that was opened and not yet closed, else None."""
    start = transcript.rfind(profile.code_start)
    if start < 0:
        return None
    body = transcript[start + len(profile.code_start) :]
    return None if f"\n{profile.code_end}" in body else body


def unrun_code(transcript: str, profile: ModelProfile) -> str | None:
    """The transcript cut after a python block that was closed but never run (only whitespace
    follows its closing fence: a run block is followed by its output fence), else None.

    A model may close a block and stop right there, by EOS, `max_tokens` or the end-of-thinking
    marker, so the stop string (the fence on a line of its own) never fired."""
    start = transcript.rfind(profile.code_start)
    if start < 0:
        return None
    closing = f"\n{profile.code_end}"
    end = transcript.find(closing, start + len(profile.code_start) - 1)
    if end < 0 or transcript[end + len(closing) :].strip():
        return None
    return transcript[: end + len(closing)]


def wants_hint(state: AgentState, ctx: RunContext) -> bool:
    """Hint-infer policy: more tool use is wanted and hints are left to spend."""
    options = ctx.options
    if state["tool_calls"] >= options.max_tool_calls:
        return False
    if state["hints"] >= options.hint_rounds + options.min_tool_calls:
        return False
    return state["tool_calls"] < options.min_tool_calls or state["hints"] < options.hint_rounds


@timed("generate")
async def generate(state: AgentState, runtime: Runtime[RunContext]) -> Step:
    ctx, write = runtime.context, runtime.stream_writer
    profile, options = ctx.profile, ctx.options
    if options.hint_at_start and not state["model_calls"] and not state["hints"]:
        return go("hint", reason="start")
    phase = state["phase"]
    thinking = phase == "thinking"
    used = state["thinking_tokens"] if thinking else state["answer_tokens"]
    budget = options.thinking_budget if thinking else options.answer_budget
    prompt = ctx.prompt + state["transcript"]
    # only what was appended since the last call is new; it is tokenized only near the limit
    new_text = state["transcript"][state["counted_chars"] :] if state["context_tokens"] else prompt
    prompt_tokens = state["context_tokens"] + tokens_at_most(new_text)
    limit = ctx.context_length - ctx.context_margin
    exact = limit - prompt_tokens < max(MIN_ROUND, min(ctx.round_tokens, budget - used))
    if exact:
        prompt_tokens = state["context_tokens"] + ctx.count_tokens(new_text)
    room = limit - prompt_tokens
    if room < MIN_ROUND:  # a few tokens per call would crawl to the limit: stop cleanly now
        return go("finalize", reason="context", prompt_tokens=prompt_tokens)
    if budget - used <= 0:
        return go("force_answer" if thinking else "finalize", reason="budget")
    stop = [close_fence(profile)]
    if thinking and profile.think_end:
        stop.append(profile.think_end)
    word_hints = thinking and options.hint_word_probability > 0 and wants_hint(state, ctx)

    text, shown, scanned, cut = "", 0, 0, False
    completion: Completion | None = None
    model_started = time.perf_counter()
    stream = ctx.client.stream(
        prompt,
        max_tokens=min(ctx.round_tokens, budget - used, room),
        stop=stop,
        sampling=ctx.sampling,
        seed=options.seed,
    )
    async with contextlib.aclosing(stream) as events:
        async for event in events:
            if isinstance(event, Completion):
                completion = event
                break
            text += event.text
            if word_hints:
                cut, scanned = _word_hint(text, scanned, state, ctx)
                if cut:
                    text = text[:scanned]
                    break
            ready = len(text) - (HOLD_BACK if word_hints else 0)
            if ready > shown:
                write(ThinkingDelta(text=text[shown:ready], phase=phase))
                shown = ready
    if len(text) > shown:
        write(ThinkingDelta(text=text[shown:], phase=phase))
    model_ms = (time.perf_counter() - model_started) * 1000

    tokens = completion.completion_tokens if completion and not cut else ctx.count_tokens(text)
    if completion and completion.usage_from_server:
        prompt_tokens = completion.prompt_tokens
    elif not exact:
        prompt_tokens = state["context_tokens"] + ctx.count_tokens(new_text)
    update: dict[str, Any] = {
        "transcript": state["transcript"] + text,
        "prompt_tokens": prompt_tokens,
        "context_tokens": prompt_tokens + tokens,
        "counted_chars": len(state["transcript"]) + len(text),
        "completion_tokens": state["completion_tokens"] + tokens,
        "model_calls": state["model_calls"] + 1,
        "thinking_tokens": state["thinking_tokens"] + (tokens if thinking else 0),
        "answer_tokens": state["answer_tokens"] + (0 if thinking else tokens),
        "timings_ms": _add(state["timings_ms"], "model", model_ms),
    }
    if cut:
        return go("hint", **update, **_authored(state, update["transcript"], ctx), reason="word")
    assert completion is not None
    to, more = _route_after(completion, update["transcript"], used + tokens, state, ctx)
    written = more.get("transcript", update["transcript"])
    return go(to, **{**update, **more}, **_authored(state, written, ctx))


def _authored(state: AgentState, transcript: str, ctx: RunContext) -> dict[str, Any]:
    """The segments once the model's own text (prose and code) extends the transcript."""
    before, profile = state["transcript"], ctx.profile
    new = transcript[len(before) :]
    return {
        "segments": seg.authored(
            state["segments"], before, new, profile.code_start, profile.code_end
        )
    }


def _word_hint(text: str, scanned: int, state: AgentState, ctx: RunContext) -> tuple[bool, int]:
    """Whether to cut before a 'Wait'/'Alternatively' in the new text, and up to where the
    text has been judged."""
    chance = ctx.options.hint_word_probability
    for match in HINT_WORD.finditer(text, scanned):
        if match.end() == len(text):
            return False, match.start()  # "Wait" or "Waiting"? the next delta tells
        if open_code(text, ctx.profile) is None and ctx.rng.random() < chance:
            return True, match.start()
        scanned = match.end()
    return False, max(scanned, len(text) - HOLD_BACK)


def _route_after(
    completion: Completion, transcript: str, used: int, state: AgentState, ctx: RunContext
) -> tuple[Route, dict[str, Any]]:
    """Where a finished model call sends the run, and what that adds to the update."""
    profile, options = ctx.profile, ctx.options
    thinking = state["phase"] == "thinking"
    fence = close_fence(profile)
    if completion.stop_reason == fence:
        if open_code(transcript, profile) is not None:
            return "execute", {}
        return "generate", {"transcript": transcript + fence}  # closed a non-python block
    final_program = options.kind == "code" and not thinking and completion.finish_reason != "length"
    if not final_program and (closed := unrun_code(transcript, profile)) is not None:
        return "execute", {"transcript": closed}  # closed, then the call ended another way
    if thinking and profile.think_end and completion.stop_reason == profile.think_end:
        if wants_hint(state, ctx):
            return "hint", {"reason": "thinking_ended"}
        return "generate", {"transcript": transcript + profile.think_end, "phase": "answer"}
    if completion.finish_reason == "length":
        budget = options.thinking_budget if thinking else options.answer_budget
        if used < budget:
            return "generate", {}  # only the per-call cap was hit
        return "force_answer" if thinking else "finalize", {"reason": "budget"}
    if open_code(transcript, profile) is not None:  # the model stopped inside a code block
        return "execute", {"transcript": transcript + f"\n{profile.code_end}"}
    if wants_hint(state, ctx):
        return "hint", {"reason": "thinking_ended" if thinking else "answer_ended"}
    if unanswered(transcript, state, ctx):
        return "force_answer", {"reason": "unanswered"}
    return "finalize", {"reason": "eos"}


def unanswered(transcript: str, state: AgentState, ctx: RunContext) -> bool:
    """`lead_answer` asks for the answer once more where the model ended its turn without
    marking one (the tiny model's "The output is 42."), the kind's way."""
    if not ctx.options.lead_answer or any(s["kind"] == "forced" for s in state["segments"]):
        return False
    kind = kind_of(ctx.options.kind)
    return (
        bool(kind.lead)
        and not kind.extract(answer_section(transcript, ctx.profile), transcript).marked
    )


@timed("execute")
async def execute(state: AgentState, runtime: Runtime[RunContext]) -> Step:
    ctx, write = runtime.context, runtime.stream_writer
    profile = ctx.profile
    transcript = state["transcript"]
    code = open_code(transcript, profile)
    if code is None:  # closed by the model (see `unrun_code`): the transcript ends at its fence
        start = transcript.rfind(profile.code_start) + len(profile.code_start)
        code = transcript[start:].removesuffix(profile.code_end).removesuffix("\n")
        closed = transcript
    else:
        closed = transcript + f"\n{profile.code_end}"
    segments = seg.add(state["segments"], "code", closed[len(transcript) :])
    index = state["tool_calls"] + 1
    if state["tool_calls"] >= ctx.options.max_tool_calls:
        output = (
            f"Code execution limit reached ({ctx.options.max_tool_calls} runs): this code was "
            "not run, and no more code can be run. Continue by reasoning alone."
        )
        write(Execution(index=index, status=Status.rejected, error=output, output=output))
        block = profile.output_block(output)
        return go(
            "generate",
            transcript=closed + block,
            segments=seg.add(segments, "tool_error", block),
        )
    write(Code(index=index, code=code))
    started = time.perf_counter()
    result = await ctx.session.run(code, timeout=ctx.options.code_timeout)
    sandbox_ms = (time.perf_counter() - started) * 1000
    output = model_output(result)
    write(Execution(index=index, output=output, **result.model_dump()))
    block = profile.output_block(output)
    kind: seg.SegmentKind = "tool_output" if result.status == Status.ok else "tool_error"
    return go(
        "generate",
        transcript=closed + block,
        segments=seg.add(segments, kind, block),
        tool_calls=index,
        timings_ms=_add(state["timings_ms"], "sandbox", sandbox_ms),
    )


def model_output(result: ExecResult) -> str:
    """What the model reads in the output fence: what a notebook would show."""
    parts = [result.stdout.rstrip("\n"), result.value or "", result.stderr.rstrip("\n")]
    parts.append(result.error or "")
    parts += [
        f"[figure {number}: {image.width}x{image.height} PNG]"
        for number, image in enumerate(result.images, 1)
    ]
    text = "\n".join(part for part in parts if part)
    if result.truncated:
        text += "\n(output truncated)"
    return text or "(no output)"


@timed("hint")
async def hint(state: AgentState, runtime: Runtime[RunContext]) -> Step:
    ctx = runtime.context
    text = ctx.profile.hint_text(ctx.rng.randrange(len(ctx.profile.hints)))
    transcript = state["transcript"]
    if transcript and not transcript.endswith(("\n", " ")):
        text = "\n\n" + text
    runtime.stream_writer(Hint(text=text, reason=state["reason"]))
    return go(
        "generate",
        transcript=transcript + text,
        segments=seg.add(state["segments"], "hint", text),
        hints=state["hints"] + 1,
    )


@timed("force_answer")
async def force_answer(state: AgentState, runtime: Runtime[RunContext]) -> Step:
    ctx = runtime.context
    transcript, lead = state["transcript"], kind_of(ctx.options.kind).lead
    if state["reason"] == "unanswered":  # the turn ended with no marked answer: ask for one
        transcript += ("" if transcript.endswith("\n\n") else "\n\n") + lead
    else:
        runtime.stream_writer(
            BudgetExhausted(budget=ctx.options.thinking_budget, used=state["thinking_tokens"])
        )
        if open_code(transcript, ctx.profile) is not None:
            transcript += f"\n{ctx.profile.code_end}"
        transcript += ctx.profile.early_stop_text
        if ctx.options.lead_answer:
            transcript += lead
    forced = transcript[len(state["transcript"]) :]
    return go(
        "generate",
        transcript=transcript,
        segments=seg.add(state["segments"], "forced", forced),
        phase="answer",
        reason=state["reason"] or "budget",
    )


def answer_section(transcript: str, profile: ModelProfile) -> str:
    """Where the answer is read: after the end of thinking or the early-stop text, if any."""
    for marker in (profile.think_end, profile.early_stop_text):
        if marker and marker in transcript:
            transcript = transcript.rsplit(marker, 1)[1]
    return transcript


@timed("finalize")
async def finalize(state: AgentState, runtime: Runtime[RunContext]) -> Step:
    ctx = runtime.context
    profile, transcript = ctx.profile, state["transcript"]
    section = answer_section(transcript, profile)
    found = kind_of(ctx.options.kind).extract(section, transcript)
    runtime.stream_writer(
        Answer(
            text=section.strip(),
            answer=found.answer,
            extracted=found.marked,
            stop_cause=state["reason"] or "eos",
        )
    )
    return Command(goto=END, update={"answer": found.answer})


def _add(timings: dict[str, float], key: str, ms: float) -> dict[str, float]:
    return {**timings, key: timings.get(key, 0.0) + ms}
