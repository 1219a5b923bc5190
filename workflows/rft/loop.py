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
    base_url: str | None = Field(
        None, description="A server that serves `base`; none: the loop serves it on serve_port."
    )
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
    serve: list[str] = Field(
        default_factory=list, description="Extra `model serve` flags (e.g. --no-compile)."
    )
    filter: FilterConfig = Field(default_factory=FilterConfig)

    @classmethod
    def load(cls, path: Path) -> LoopConfig:
        return cls.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))


class Step(BaseModel):
    name: str
    argv: list[str]
    env: dict[str, str] = Field(default_factory=dict)
    server: list[str] | None = None  # the `model serve` this step talks to, started on demand
    port: int | None = None  # the server's
    exclusive: bool = False  # needs the cores: every server is stopped first
    runs: tuple[Path, int, Path] | None = None  # (problems, samples, out): done when out has all
    product: Path | None = None  # done when this file exists

    def done(self) -> bool:
        """Finished in an earlier run of the loop: a rerun skips it (and its server)."""
        if self.product is not None:
            return self.product.is_file()
        if self.runs is None:
            return False
        problems, samples, out = self.runs
        if not problems.is_file() or not out.is_file():
            return False
        from workflows.datasets import load
        from workflows.runner import pending

        return not pending(load(str(problems), "math").problems, samples, out)[0]


class Timing(BaseModel):
    step: str
    seconds: float
    skipped: bool


def startbox() -> list[str]:
    return [sys.executable, "-m", "startbox"]


def serve(model: str, port: int, name: str, extra: list[str]) -> list[str]:
    return [*startbox(), "model", "serve", "--model", model, "--port", str(port),
            "--served-name", name, *extra]  # fmt: skip


def plan(config: LoopConfig) -> list[Step]:
    w, sb = config.workdir, startbox()
    heldout, train = w / "heldout.jsonl", w / "train.jsonl"
    filt = config.filter
    model, name = config.base, config.served_name
    url = config.base_url or f"http://127.0.0.1:{config.serve_port}"
    server = None if config.base_url else serve(model, config.serve_port, name, config.serve)
    steps = [
        Step(name="held-out problems", argv=[*sb, "rft", "problems", "--n",
             str(config.heldout_problems), "--seed", str(config.heldout_seed), "--out",
             str(heldout)]),
        Step(name="train problems", argv=[*sb, "rft", "problems", "--n",
             str(config.train_problems), "--seed", str(config.train_seed), "--out", str(train),
             "--exclude", str(heldout)]),
        Step(name="baseline eval", argv=[*sb, "rft", "eval", str(heldout), "--out",
             str(w / "eval-0.jsonl"), "--base-url", url, "--model", model,
             "--concurrency", str(config.concurrency), *config.eval],
             env={SERVED: name}, server=server, port=config.serve_port,
             runs=(heldout, 1, w / "eval-0.jsonl")),
    ]  # fmt: skip
    for r in range(1, config.rounds + 1):
        traj, kept, data, out = (w / f"traj-{r}.jsonl", w / f"kept-{r}.jsonl",
                                 w / f"data-{r}", w / f"run-{r}")  # fmt: skip
        port = config.serve_port + r
        steps += [
            Step(name=f"round {r}: collect", argv=[*sb, "rft", "collect", str(train), "--out",
                 str(traj), "--base-url", url, "--model", model, "--samples",
                 str(config.samples), "--concurrency", str(config.concurrency), *config.collect],
                 env={SERVED: name}, server=server, port=port - 1,
                 runs=(train, config.samples, traj)),
            Step(name=f"round {r}: filter", argv=[*sb, "rft", "filter", str(traj), "--out",
                 str(kept), "--hints", filt.hints, "--per-problem", str(filt.per_problem),
                 "--ngram", str(filt.ngram), "--max-repetition", str(filt.max_repetition),
                 "--max-tool-error-ratio", str(filt.max_tool_error_ratio),
                 "--max-tokens", str(filt.max_tokens),
                 "--require-tool" if filt.require_tool else "--no-require-tool"]),
            Step(name=f"round {r}: export", argv=[*sb, "rft", "export", str(kept), "--format",
                 "tokens", "--base", model, "--out", str(data)]),
            Step(name=f"round {r}: train", argv=[*sb, "rft", "train", str(data), "--base", model,
                 "--out", str(out), "--resume", *config.train], exclusive=True,
                 product=out / "model" / "rft_card.json"),
            Step(name=f"round {r}: eval", argv=[*sb, "rft", "eval", str(heldout), "--out",
                 str(w / f"eval-{r}.jsonl"), "--baseline", str(w / "eval-0.jsonl"),
                 "--base-url", f"http://127.0.0.1:{port}", "--model", str(out / "model"),
                 "--concurrency", str(config.concurrency), *config.eval],
                 env={SERVED: f"rft-{r}"}, port=port,
                 server=serve(str(out / "model"), port, f"rft-{r}", config.serve),
                 runs=(heldout, 1, w / f"eval-{r}.jsonl")),
        ]  # fmt: skip
        model, name = str(out / "model"), f"rft-{r}"
        url, server = f"http://127.0.0.1:{port}", steps[-1].server
    return steps


def run(
    steps: list[Step], say: Callable[[str], None], ready_timeout: float = 900.0
) -> list[Timing]:
    """Each unfinished step in turn, its server started first (one server at a time: this
    machine's cores are few); every server is stopped when a step needs the cores or at the end.
    """
    servers: dict[int, subprocess.Popen[bytes]] = {}
    timings = []
    try:
        for step in steps:
            if step.done():
                say(f"[bold]{step.name}[/]: done already, skipped")
                timings.append(Timing(step=step.name, seconds=0.0, skipped=True))
                continue
            started = time.monotonic()
            if step.exclusive or (step.port is not None and step.port not in servers):
                stop(servers)
            if step.server is not None and step.port is not None and step.port not in servers:
                say(f"[bold]serve[/] for {step.name}: {shlex.join(step.server)}")
                servers[step.port] = subprocess.Popen(step.server)
                wait_ready(servers[step.port], f"http://127.0.0.1:{step.port}", ready_timeout)
            say(f"[bold]{step.name}[/]: {shlex.join(step.argv)}")
            code = subprocess.run(step.argv, env={**os.environ, **step.env}, check=False)
            if code.returncode != 0:
                raise RuntimeError(f"{step.name} failed (exit {code.returncode}); fix it and "
                                   "rerun: finished steps are skipped")  # fmt: skip
            timings.append(
                Timing(step=step.name, seconds=time.monotonic() - started, skipped=False)
            )
    finally:
        stop(servers)
    return timings


def stop(servers: dict[int, subprocess.Popen[bytes]]) -> None:
    """SIGTERM each server and wait for it (vLLM frees its cores and memory on the way out)."""
    for port in list(servers):
        server = servers.pop(port)
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


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
