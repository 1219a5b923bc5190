"""Every route of the START loop, made deterministic by scripted model turns."""

from __future__ import annotations

from agent.events import Answer, Execution, Hint, RunFinished
from agent.nodes import tokens_at_most
from agent.service import Agent
from agent.settings import RunOptions
from model_host.profiles import get_profile
from tests.agent.conftest import Script, collect, of_type

QWEN3 = get_profile("qwen3")


async def test_code_then_execution_then_continuation(agent: Agent, script: Script) -> None:
    server = script(
        "<think>\nLet me compute.\n```python\nx = 6 * 7\nprint(x)\n```\nignored",
        "The output says 42.</think>",
        "\n\nThe answer is \\boxed{42}.",
    )
    events = await collect(agent)
    kinds = [e.type for e in events if e.type != "thinking_delta"]
    assert kinds == ["run_started", "code", "execution", "answer", "run_finished"]
    execution = of_type(events, "execution")[0]
    assert isinstance(execution, Execution)
    assert (execution.status, execution.stdout) == ("ok", "42\n")
    second_prompt = server.requests[1]["prompt"]
    assert second_prompt.endswith("print(x)\n```\n```output\n42\n```\n")
    third_prompt = server.requests[2]["prompt"]
    assert third_prompt.endswith("The output says 42.</think>")
    assert "</think>" in server.requests[0]["stop"]
    answer = of_type(events, "answer")[0]
    assert isinstance(answer, Answer) and (answer.answer, answer.extracted) == ("42", True)
    finished = events[-1]
    assert isinstance(finished, RunFinished)
    assert finished.status == "ok" and finished.usage.tool_calls == 1
    assert finished.usage.model_calls == 3


async def test_state_carries_across_rounds(agent: Agent, script: Script) -> None:
    script(
        "<think>\n```python\nn = 10\n```\n",
        "```python\nprint(sum(range(n)))\n```\n",
        "</think>",
        "\\boxed{45}",
    )
    events = await collect(agent)
    outputs = [e.stdout for e in events if isinstance(e, Execution)]
    assert outputs == ["", "45\n"]


async def test_hint_when_thinking_ends_before_min_tool_calls(agent: Agent, script: Script) -> None:
    server = script(
        "<think>\nEasy: 2 + 2 = 4.</think>",
        "print(2 + 2)\n```\n",
        "So it is 4.</think>",
        "\\boxed{4}",
    )
    events = await collect(agent, "What is 2 + 2?", min_tool_calls=1, seed=7)
    hints = of_type(events, "hint")
    assert len(hints) == 1
    assert isinstance(hints[0], Hint) and hints[0].reason == "thinking_ended"
    assert hints[0].text.strip().split("\n")[0] in QWEN3.hints
    assert server.requests[1]["prompt"].endswith(QWEN3.code_start)
    assert "</think>" not in server.requests[1]["prompt"].split("<|im_start|>assistant")[-1]
    assert of_type(events, "execution")[0].stdout == "4\n"  # type: ignore[union-attr]
    assert events[-1].usage.hints == 1  # type: ignore[union-attr]


async def test_hint_rounds_are_spent_then_the_run_ends(agent: Agent, script: Script) -> None:
    script(
        "<think>\nDone.</think>",
        "print('checked')\n```\n",
        "Fine.</think>",
        "\\boxed{1}",
    )
    events = await collect(agent, hint_rounds=1)
    assert len(of_type(events, "hint")) == 1
    assert events[-1].answer == "1"  # type: ignore[union-attr]


async def test_seeded_hints_are_reproducible(agent: Agent, script: Script) -> None:
    chosen = []
    for _ in range(2):
        script("<think>\nx</think>", "1\n```\n", "</think>", "\\boxed{1}")
        events = await collect(agent, min_tool_calls=1, seed=123)
        chosen.append(of_type(events, "hint")[0].text)  # type: ignore[union-attr]
    assert chosen[0] == chosen[1]


async def test_hint_after_wait_cuts_there(agent: Agent, script: Script) -> None:
    server = script(
        "<think>\nThe sum is 10. Wait, let me recount the terms carefully.",
        "print(1 + 2 + 3 + 4)\n```\n",
        "</think>",
        "\\boxed{10}",
    )
    events = await collect(agent, hint_rounds=1, hint_word_probability=1.0, seed=1)
    hint = of_type(events, "hint")[0]
    assert isinstance(hint, Hint) and hint.reason == "word"
    prompt = server.requests[1]["prompt"]
    assert "The sum is 10. " in prompt and "let me recount" not in prompt
    streamed = "".join(e.text for e in of_type(events, "thinking_delta"))  # type: ignore[union-attr]
    assert "recount" not in streamed


async def test_thinking_budget_forces_the_answer(agent: Agent, script: Script) -> None:
    server = script(
        "<think>\n" + "step " * 40,
        "\\boxed{7}",
    )
    events = await collect(agent, thinking_budget=10)
    exhausted = of_type(events, "budget_exhausted")
    assert len(exhausted) == 1 and exhausted[0].used == 10  # type: ignore[union-attr]
    assert server.requests[0]["max_tokens"] == 10
    assert server.requests[1]["prompt"].endswith(QWEN3.early_stop_text)
    answer = of_type(events, "answer")[0]
    assert isinstance(answer, Answer)
    assert (answer.answer, answer.stop_cause) == ("7", "eos")  # the answer itself ended
    assert events[-1].usage.thinking_tokens == 10  # type: ignore[union-attr]


async def test_per_call_cap_continues_until_the_budget(agent: Agent, script: Script) -> None:
    words = "w " * 100
    server = script("<think>\n" + words, words + "</think>", "\\boxed{2}")
    events = await collect(agent, thinking_budget=1000)
    assert [r["max_tokens"] for r in server.requests[:2]] == [64, 64]
    assert events[-1].answer == "2"  # type: ignore[union-attr]


async def test_tool_limit_tells_the_model_in_line(agent: Agent, script: Script) -> None:
    server = script(
        "<think>\n```python\nprint(1)\n```\n",
        "```python\nprint(2)\n```\n",
        "OK, no more code.</think>",
        "\\boxed{1}",
    )
    events = await collect(agent, max_tool_calls=1)
    executions = of_type(events, "execution")
    assert [e.status for e in executions] == ["ok", "rejected"]  # type: ignore[union-attr]
    assert "limit reached" in server.requests[2]["prompt"]
    assert len(of_type(events, "code")) == 1


async def test_unclosed_code_block_is_closed_and_run(agent: Agent, script: Script) -> None:
    server = script("<think>\n```python\nprint('hi')", "</think>", "\\boxed{hi}")
    events = await collect(agent)
    assert of_type(events, "execution")[0].stdout == "hi\n"  # type: ignore[union-attr]
    assert server.requests[1]["prompt"].endswith("print('hi')\n```\n```output\nhi\n```\n")


async def test_sandbox_timeout_is_shown_to_the_model(agent: Agent, script: Script) -> None:
    server = script(
        "<think>\n```python\nwhile True:\n    pass\n```\n",
        "That loops forever.</think>",
        "\\boxed{0}",
    )
    events = await collect(agent, code_timeout=1)
    execution = of_type(events, "execution")[0]
    assert execution.status == "timeout"  # type: ignore[union-attr]
    assert "timed out" in server.requests[1]["prompt"]
    assert events[-1].status == "ok"  # type: ignore[union-attr]


async def test_malformed_code_gives_the_traceback(agent: Agent, script: Script) -> None:
    server = script("<think>\n```python\ndef f(:\n```\n", "</think>", "\\boxed{?}")
    await collect(agent)
    assert "SyntaxError" in server.requests[1]["prompt"]


async def test_no_boxed_answer_falls_back_to_the_last_line(agent: Agent, script: Script) -> None:
    script("<think>\nhm</think>", "\n\nI think it is\n42")
    answer = of_type(await collect(agent), "answer")[0]
    assert isinstance(answer, Answer)
    assert (answer.answer, answer.extracted) == ("42", False)


async def test_code_problems_answer_with_the_final_program(agent: Agent, script: Script) -> None:
    script("<think>\nplan</think>", "\n\n```python\ndef add(a, b):\n    return a + b\n```")
    answer = of_type(await collect(agent, kind="code"), "answer")[0]
    assert answer.answer == "def add(a, b):\n    return a + b"  # type: ignore[union-attr]


async def test_runs_are_stored_and_read_back(agent: Agent, script: Script) -> None:
    script("<think>\n```python\nprint(5)\n```\n", "</think>", "\\boxed{5}")
    events = await collect(agent)
    assert agent.store is not None
    record = await agent.store.get(events[0].run_id)
    assert record is not None
    assert (record.status, record.answer) == ("ok", "5")
    assert [e.seq for e in record.events] == list(range(1, len(events) + 1))
    assert [e.type for e in record.events] == [e.type for e in events]
    assert agent.checkpoints is not None
    snapshot = await agent.checkpoints.get(events[0].run_id)
    assert snapshot.values["tool_calls"] == 1 and snapshot.values["answer"] == "5"


async def test_context_guard_ends_the_run_before_the_window(agent: Agent, script: Script) -> None:
    window = agent.settings.context_length
    agent.settings.context_length = 512
    try:
        server = script(*["<think>\n" + "word " * 100] + ["word " * 100] * 20)
        events = await collect(agent, thinking_budget=5000)
    finally:
        agent.settings.context_length = window
    answer = of_type(events, "answer")[0]
    assert isinstance(answer, Answer) and answer.stop_cause == "context"
    assert events[-1].status == "ok"  # type: ignore[union-attr]
    last = server.requests[-1]
    assert last["max_tokens"] <= 512 - agent.settings.context_margin


def test_token_bound_holds_for_the_model_tokenizer(agent: Agent) -> None:
    """The context guard skips tokenizing far from the limit; its bound must never undercount."""
    texts = [
        "",
        " ",
        "x",
        "\n\n\n",
        "```output\nTraceback (most recent call last):\n  ZeroDivisionError\n```\n",
        "∑ᵢ xᵢ² = 42 — ça va? 数学 🙂🙂🙂",
        "\t" * 50 + "    " * 50,
        agent.prompt("What is 2 + 2?", RunOptions()).text,
    ]
    for text in texts:
        assert agent.template.count_tokens(text) <= tokens_at_most(text), text


async def test_block_closed_at_eos_is_run(agent: Agent, script: Script) -> None:
    """`\\n```` then EOS: the stop string (the fence on a line of its own) never fires."""
    server = script("<think>\n```python\nprint(6 * 7)\n```", "It is 42.</think>", "\\boxed{42}")
    events = await collect(agent)
    assert of_type(events, "execution")[0].stdout == "42\n"  # type: ignore[union-attr]
    assert server.requests[1]["prompt"].endswith("print(6 * 7)\n```\n```output\n42\n```\n")
    finished = events[-1]
    assert isinstance(finished, RunFinished) and finished.usage.tool_calls == 1
    assert finished.answer == "42"


async def test_block_closed_right_before_the_end_of_thinking_is_run(
    agent: Agent, script: Script
) -> None:
    server = script(
        "<think>\n```python\nprint(2 ** 5)\n```</think>", "So 32.</think>", "\\boxed{32}"
    )
    events = await collect(agent)
    assert of_type(events, "execution")[0].stdout == "32\n"  # type: ignore[union-attr]
    assert server.requests[1]["prompt"].endswith("```\n```output\n32\n```\n")


async def test_block_closed_at_the_per_call_cap_is_run(agent: Agent, script: Script) -> None:
    words = "w " * 60  # with the opening words, the call is cut by max_tokens (64) at the fence
    server = script(f"<think>\n{words}```python\nprint(5)\n``` more", "</think>", "\\boxed{5}")
    events = await collect(agent, thinking_budget=1000)
    assert server.requests[0]["max_tokens"] == 64
    assert of_type(events, "execution")[0].stdout == "5\n"  # type: ignore[union-attr]
