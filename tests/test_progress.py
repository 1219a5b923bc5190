"""Long silent steps say what they do with the elapsed time, on a terminal or not; the budget
flags explain themselves in --help."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from model_host.host import every

ROOT = Path(__file__).resolve().parents[1]


def test_a_quiet_command_reports_elapsed_time_into_a_pipe() -> None:
    done = subprocess.run(
        [ROOT / "scripts" / "with-progress.sh", "installing", "sleep", "3"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PROGRESS_EVERY": "1"},
    )  # fmt: skip
    lines = done.stdout.splitlines()
    assert lines[0] == "installing ..." and lines[-1].startswith("installing: done in ")
    assert any(line.startswith("installing: still running, ") for line in lines), lines
    failed = subprocess.run(
        [ROOT / "scripts" / "with-progress.sh", "step", "sh", "-c", "exit 3"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert failed.returncode == 3 and "step: failed (exit 3)" in failed.stdout


def test_the_vllm_wait_says_a_line_per_interval() -> None:
    said: list[str] = []
    on_wait = every(15.0, said.append)
    for second in range(0, 46):
        on_wait(float(second), "INFO compiling graph")
    assert said == [f"vLLM still starting, {s} s: INFO compiling graph" for s in (15, 30, 45)]


def help_of(*command: str) -> str:
    return subprocess.run(
        [Path(sys.executable).with_name("startbox"), *command, "--help"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "200"},
    ).stdout  # fmt: skip


def test_budget_flags_show_their_meaning_and_default() -> None:
    shown = help_of("solve")
    assert "Thinking tokens across all rounds. Default 4096." in shown
    assert "Answer tokens after the thinking ends. Default 1024." in shown


SHOWN = {
    ("sandbox", "exec"): [
        "Wall-clock seconds. Default 10. [env var: STARTBOX_SANDBOX_TIMEOUT]",
        "[env var: STARTBOX_SANDBOX_MEMORY]",
    ],
    ("model", "serve"): [
        "Port of the embedded vLLM. Default 8010. [env var: STARTBOX_MODEL_PORT]",
        "[env var: STARTBOX_MODEL_MODEL]",
        "[env var: STARTBOX_MODEL_DTYPE]",
    ],
    ("model", "bench"): [
        "[env var: STARTBOX_MODEL_BASE_URL]",
        "[env var: STARTBOX_MODEL_SERVED_NAME]",
    ],
}


@pytest.mark.parametrize(("command", "shown"), SHOWN.items())
def test_help_names_each_flags_env_twin(command: tuple[str, ...], shown: list[str]) -> None:
    """Rich markup once swallowed a help text's "[env: ...]"; typer's envvar shows it."""
    text = help_of(*command)
    assert all(line in text for line in shown), text
