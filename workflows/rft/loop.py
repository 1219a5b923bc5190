"""`rft run CONFIG`: the whole Hint-RFT loop from one TOML file, as the same `startbox rft`
commands a user would type, so every step shows its progress and resumes where it stopped.

Round r collects with the model of round r-1 (the base for r = 1), trains from it, serves the
result on `serve_port + r` and evaluates it against the baseline, all without hints.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

import httpx
from pydantic import BaseModel, Field

from workflows.rft.filter import FilterConfig

SERVED = "STARTBOX_MODEL_SERVED_NAME"  # the name the client asks the server for


class LoopConfig(BaseModel):
    workdir: Path
    base: str = Field("smollm2-135m", description="Model dir or the embedded model.")
    base_url: str = Field("http://127.0.0.1:8010", description="A server that serves `base`.")
    served_name: str = "smollm2-135m"
    rounds: int = Field(1, ge=1)
    train_problems: int = 200
    heldout_problems: int = 200
    train_seed: int = 2
    heldout_seed: int = 1
    samples: int = 1
    concurrency: int = 8
    serve_port: int = 8020
    collect: list[str] = Field(
        default_factory=lambda: ["--hint-at-start", "--min-tool-calls", "1"],
        description="Extra `rft collect` flags (budgets, hints).",
    )
    eval: list[str] = Field(default_factory=list, description="Extra `rft eval` flags.")
    train: list[str] = Field(default_factory=list, description="Extra `rft train` flags.")
    filter: FilterConfig = Field(default_factory=FilterConfig)

    @classmethod
    def load(cls, path: Path) -> LoopConfig:
        return cls.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))


class Step(BaseModel):
    name: str
    argv: list[str]
    env: dict[str, str] = Field(default_factory=dict)
    serve: bool = False  # runs in the background until the loop ends; wait for `port`
    port: int | None = None


def startbox() -> list[str]:
    return [sys.executable, "-m", "startbox"]


def plan(config: LoopConfig) -> list[Step]:
    w, sb = config.workdir, startbox()
    heldout, train = str(w / "heldout.jsonl"), str(w / "train.jsonl")
    filt = config.filter
    steps = [
        Step(name="held-out problems", argv=[*sb, "rft", "problems", "--n",
             str(config.heldout_problems), "--seed", str(config.heldout_seed), "--out", heldout]),
        Step(name="train problems", argv=[*sb, "rft", "problems", "--n",
             str(config.train_problems), "--seed", str(config.train_seed), "--out", train,
             "--exclude", heldout]),
        Step(name="baseline eval", argv=[*sb, "rft", "eval", heldout, "--out",
             str(w / "eval-0.jsonl"), "--base-url", config.base_url, "--model", config.base,
             "--concurrency", str(config.concurrency), *config.eval],
             env={SERVED: config.served_name}),
    ]  # fmt: skip
    model, url, name = config.base, config.base_url, config.served_name
    for r in range(1, config.rounds + 1):
        traj, kept, data, out = (w / f"traj-{r}.jsonl", w / f"kept-{r}.jsonl",
                                 w / f"data-{r}", w / f"run-{r}")  # fmt: skip
        port = config.serve_port + r
        steps += [
            Step(name=f"round {r}: collect", argv=[*sb, "rft", "collect", train, "--out",
                 str(traj), "--base-url", url, "--model", model, "--samples",
                 str(config.samples), "--concurrency", str(config.concurrency), *config.collect],
                 env={SERVED: name}),
            Step(name=f"round {r}: filter", argv=[*sb, "rft", "filter", str(traj), "--out",
                 str(kept), "--hints", filt.hints, "--per-problem", str(filt.per_problem),
                 "--ngram", str(filt.ngram), "--max-repetition", str(filt.max_repetition),
                 "--max-tool-error-ratio", str(filt.max_tool_error_ratio),
                 "--max-tokens", str(filt.max_tokens)]),
            Step(name=f"round {r}: export", argv=[*sb, "rft", "export", str(kept), "--format",
                 "tokens", "--base", model, "--out", str(data)]),
            Step(name=f"round {r}: train", argv=[*sb, "rft", "train", str(data), "--base", model,
                 "--out", str(out), "--resume", *config.train]),
            Step(name=f"round {r}: serve", argv=[*sb, "model", "serve", "--model",
                 str(out / "model"), "--port", str(port), "--served-name", f"rft-{r}"],
                 serve=True, port=port),
            Step(name=f"round {r}: eval", argv=[*sb, "rft", "eval", heldout, "--out",
                 str(w / f"eval-{r}.jsonl"), "--baseline", str(w / "eval-0.jsonl"),
                 "--base-url", f"http://127.0.0.1:{port}", "--model", str(out / "model"),
                 "--concurrency", str(config.concurrency), *config.eval],
                 env={SERVED: f"rft-{r}"}),
        ]  # fmt: skip
        model, url, name = str(out / "model"), f"http://127.0.0.1:{port}", f"rft-{r}"
    return steps


def run(steps: list[Step], say: Callable[[str], None], ready_timeout: float = 900.0) -> None:
    """Each step in turn; servers stay up until the loop ends, then get SIGTERM."""
    servers: list[subprocess.Popen[bytes]] = []
    try:
        for step in steps:
            say(f"[bold]{step.name}[/]: {shlex.join(step.argv)}")
            env = {**os.environ, **step.env}
            if step.serve:
                servers.append(subprocess.Popen(step.argv, env=env))
                wait_ready(servers[-1], f"http://127.0.0.1:{step.port}", ready_timeout)
                continue
            code = subprocess.run(step.argv, env=env, check=False).returncode
            if code != 0:
                raise RuntimeError(f"{step.name} failed (exit {code}); fix it and rerun: "
                                   "finished steps are skipped")  # fmt: skip
    finally:
        for server in servers:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)


def wait_ready(process: subprocess.Popen[bytes], url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server for {url} exited {process.returncode}; see its log")
        try:
            if httpx.get(f"{url}/v1/models", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(2)
    raise RuntimeError(
        f"{url} not ready after {timeout:.0f} s (raise STARTBOX_MODEL_STARTUP_TIMEOUT)"
    )
