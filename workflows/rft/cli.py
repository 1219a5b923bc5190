"""`startbox rft ...`: Hint-RFT, the loop that teaches a model to call tools without hints.

problems -> collect (Hint-infer) -> filter -> export -> train -> eval, or all of it: `rft run`.
Every command resumes where it stopped and says what it wrote.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
import uvloop
from rich.console import Console

from agent import flags
from model_host.profiles import SamplingOverrides
from workflows.cli import RedisUrl

if TYPE_CHECKING:  # heavy imports stay inside the commands, so `startbox --help` is fast
    from arq.connections import ArqRedis
    from rich.progress import Progress
    from transformers import PreTrainedTokenizerBase

    from agent.settings import RunOptions
    from model_host.settings import ModelSettings
    from model_host.train import TrainOptions, TrainResult
    from workflows.datasets import Problem
    from workflows.rft.evaluate import EvalReport
    from workflows.rft.loop import Timing

app = typer.Typer(help="Hint-RFT: collect, filter, export, train, evaluate.", no_args_is_help=True)
console = Console(stderr=True)

Data = Annotated[Path, typer.Argument(help="A JSONL problem set (any layout the judge reads).")]
Kind = Annotated[str, typer.Option(envvar="STARTBOX_RFT_KIND", help="math or code.")]
Concurrency = Annotated[int, typer.Option(min=1, envvar="STARTBOX_RFT_CONCURRENCY")]
Limit = Annotated[
    int | None, typer.Option(min=1, envvar="STARTBOX_RFT_LIMIT", help="First N problems.")
]
HintWordProbability = Annotated[
    float | None, typer.Option(envvar="STARTBOX_AGENT_HINT_WORD_PROBABILITY")
]
RoundTokens = Annotated[int | None, typer.Option(envvar="STARTBOX_AGENT_ROUND_TOKENS")]


@app.command()
def problems(
    n: Annotated[int, typer.Option(min=1, help="How many problems.")] = 200,
    seed: Annotated[int, typer.Option(help="Train and held-out sets use different seeds.")] = 0,
    out: Annotated[Path, typer.Option(help="Write the JSONL set here.")] = Path("problems.jsonl"),
    exclude: Annotated[
        list[Path] | None, typer.Option(help="Sets whose problems must not recur (repeatable).")
    ] = None,
    family: Annotated[list[str] | None, typer.Option(help="Only these families.")] = None,
) -> None:
    """Generate computation problems with exact answers (products, sums, gcd, primes ...).

    Example: startbox rft problems --n 200 --seed 1 --out heldout.jsonl
    """
    from workflows.rft.problems import FAMILIES, exclude_ids, generate, write

    taken = exclude_ids(exclude or [])
    try:
        drawn = generate(n, seed, family, taken)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    write(drawn, out)
    names = ", ".join(family or FAMILIES)
    console.print(f"wrote {len(drawn)} problems ({names}; seed {seed}) to {out}"
                  + (f", none of the {len(taken)} in {len(exclude or [])} excluded sets"
                     if taken else ""))  # fmt: skip


Queue = Annotated[
    str | None,
    typer.Option(help="Run as queued batch NAME on Redis, solved by `startbox worker`s "
                 "(which set the model); default: in-process."),
]  # fmt: skip
QueueWait = Annotated[
    float, typer.Option(min=1, help="Seconds to wait for the queued batch to finish.")
]


@app.command()
@flags.with_sampling
def collect(
    data: Data,
    sampling: SamplingOverrides,
    out: Annotated[Path, typer.Option(help="Trajectories JSONL; rerun to resume.")],
    kind: Kind = "math",
    samples: Annotated[int, typer.Option(min=1, help="Runs per problem.")] = 1,
    concurrency: Concurrency = 8,
    limit: Limit = None,
    min_tool_calls: flags.MinToolCalls = 1,
    hint_rounds: flags.HintRounds = None,
    hint_word_probability: HintWordProbability = None,
    hint_at_start: Annotated[
        bool, typer.Option(help="Also hint before the first token (models that ramble).")
    ] = False,
    thinking_budget: flags.ThinkingBudget = None,
    answer_budget: flags.AnswerBudget = None,
    max_tool_calls: flags.MaxToolCalls = None,
    round_tokens: RoundTokens = None,
    lead_answer: flags.LeadAnswer = None,
    seed: flags.Seed = None,
    timeout: flags.Timeout = None,
    model: flags.Model = None,
    base_url: flags.BaseUrl = None,
    queue: Queue = None,
    queue_wait: QueueWait = 3600.0,
    redis_url: RedisUrl = None,
) -> None:
    """Run Hint-infer over a dataset; keep each run's segments, grade, tokens and options.

    Example: startbox rft collect train.jsonl --out traj.jsonl --samples 2 --min-tool-calls 1
    (or --queue NAME, with `startbox worker`s running)
    """
    options = _options(
        min_tool_calls=min_tool_calls,
        hint_rounds=hint_rounds,
        hint_word_probability=hint_word_probability,
        hint_at_start=hint_at_start,
        thinking_budget=thinking_budget,
        answer_budget=answer_budget,
        max_tool_calls=max_tool_calls,
        lead_answer=lead_answer,
        seed=seed,
        timeout=timeout,
        sampling=sampling,
    )
    runs = Runs(out=out, samples=samples, concurrency=concurrency, round_tokens=round_tokens,
                queue=queue, queue_wait=queue_wait, redis_url=redis_url)  # fmt: skip
    runs.run(_problems(data, kind, limit), options, _model(model, base_url))


@app.command("eval")
@flags.with_sampling
def evaluate(
    data: Data,
    sampling: SamplingOverrides,
    out: Annotated[Path, typer.Option(help="Trajectories JSONL of this eval; rerun to resume.")],
    baseline: Annotated[
        Path | None, typer.Option(help="An earlier eval's trajectories to compare against.")
    ] = None,
    kind: Kind = "math",
    concurrency: Concurrency = 8,
    limit: Limit = None,
    thinking_budget: flags.ThinkingBudget = None,
    answer_budget: flags.AnswerBudget = None,
    max_tool_calls: flags.MaxToolCalls = None,
    round_tokens: RoundTokens = None,
    lead_answer: flags.LeadAnswer = None,
    seed: flags.Seed = None,
    timeout: flags.Timeout = None,
    model: flags.Model = None,
    base_url: flags.BaseUrl = None,
    queue: Queue = None,
    queue_wait: QueueWait = 3600.0,
    redis_url: RedisUrl = None,
) -> None:
    """Held-out problems with no hints at all: spontaneous tool use, code written but never
    run, tool errors, accuracy.

    Example: startbox rft eval heldout.jsonl --model out/model --base-url http://127.0.0.1:8020
      --out after.jsonl --baseline before.jsonl
    """
    from workflows.rft.evaluate import without_hints

    options = without_hints(
        _options(
            thinking_budget=thinking_budget,
            answer_budget=answer_budget,
            max_tool_calls=max_tool_calls,
            lead_answer=lead_answer,
            seed=seed,
            timeout=timeout,
            sampling=sampling,
        )
    )
    runs = Runs(out=out, samples=1, concurrency=concurrency, round_tokens=round_tokens,
                queue=queue, queue_wait=queue_wait, redis_url=redis_url,
                label="evaluating")  # fmt: skip
    runs.run(_problems(data, kind, limit), options, _model(model, base_url))
    show_eval(out, baseline)


@app.command("filter")
def filter_(
    trajectories: Annotated[Path, typer.Argument(help="Trajectories from `rft collect`.")],
    out: Annotated[Path, typer.Option(help="Kept trajectories JSONL (+ OUT.report.json).")],
    hints: Annotated[
        str, typer.Option(help="keep: train on hint text; mask: no loss on it; drop: remove it.")
    ] = "drop",
    per_problem: Annotated[int, typer.Option(min=1, help="Kept per problem at most.")] = 2,
    ngram: Annotated[int, typer.Option(min=1, help="Word n-grams for repetition.")] = 4,
    max_repetition: Annotated[float, typer.Option(help="Repeated n-gram share at most.")] = 0.3,
    max_tool_error_ratio: Annotated[float, typer.Option(help="Failed tool rounds share.")] = 0.5,
    max_tokens: Annotated[int, typer.Option(min=1, help="Completion tokens at most.")] = 1024,
    require_tool: Annotated[bool, typer.Option(help="Drop runs that called no tool.")] = True,
) -> None:
    """Keep correct, clean, tool-using trajectories; report why each other one was dropped.

    Example: startbox rft filter traj.jsonl --out kept.jsonl --hints drop --per-problem 2
    """
    from pydantic import ValidationError

    from workflows.rft.filter import FilterConfig, filter_trajectories
    from workflows.rft.trajectory import read_trajectories, write_trajectories

    try:
        config = FilterConfig(hints=hints, per_problem=per_problem, ngram=ngram,
                              max_repetition=max_repetition, max_tokens=max_tokens,
                              max_tool_error_ratio=max_tool_error_ratio,
                              require_tool=require_tool)  # fmt: skip
        rows = list(read_trajectories(trajectories))
    except (ValidationError, FileNotFoundError) as exc:
        raise typer.BadParameter(str(exc)) from None
    with console.status(f"filtering {len(rows)} trajectories"):
        kept, report = filter_trajectories(rows, config)
    write_trajectories(kept, out)
    path = out.with_name(out.name + ".report.json")
    path.write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    why = ", ".join(f"{n} {reason}" for reason, n in sorted(report.dropped.items())) or "none"
    console.print(f"kept {report.kept} of {report.total} (hints: {hints}); dropped: {why}")
    console.print(f"wrote {out} and {path} (each drop with its reason)")


@app.command()
def export(
    kept: Annotated[Path, typer.Argument(help="Trajectories from `rft filter`.")],
    out: Annotated[Path, typer.Option(help="Directory for the data file.")],
    fmt: Annotated[
        str, typer.Option("--format", help="tokens | trl | llamafactory | verl.")
    ] = "tokens",
    base: Annotated[
        str | None, typer.Option(help="Model dir whose tokenizer tokenizes (tokens, trl).")
    ] = None,
) -> None:
    """Training data with span-level loss masks: model text and code trained, the rest not.

    Example: startbox rft export kept.jsonl --format tokens --out data/
    """
    from workflows.rft.export import FILES
    from workflows.rft.export import export as write
    from workflows.rft.trajectory import read_trajectories

    if fmt not in FILES:
        raise typer.BadParameter(f"--format {fmt!r}: pick one of {', '.join(FILES)}")
    try:
        rows = list(read_trajectories(kept))
    except FileNotFoundError as exc:
        raise typer.BadParameter(str(exc)) from None
    encode, end = None, ""
    if fmt in ("tokens", "trl"):
        tokenizer = _tokenizer(base)
        end = tokenizer.eos_token or ""
        encode = lambda text: tokenizer.encode(text, add_special_tokens=False)  # noqa: E731
    report = write(rows, fmt, out, encode, end)  # type: ignore[arg-type]
    tokens = f", {report.trained_tokens} of {report.tokens} tokens trained" if report.tokens else ""
    console.print(
        f"wrote {report.rows} rows to {report.path}{tokens} (sha256 {report.data_hash[:12]})"
    )


@app.command("train")
def train_(
    data: Annotated[Path, typer.Argument(help="`rft export --format tokens|trl` output.")],
    out: Annotated[Path, typer.Option(help="Directory: checkpoints/ and model/ (merged).")],
    base: Annotated[str | None, typer.Option(help="Model dir; default: the embedded one.")] = None,
    lora: Annotated[bool, typer.Option(help="LoRA adapter, merged at the end.")] = True,
    lora_rank: Annotated[int, typer.Option(min=1)] = 16,
    epochs: Annotated[float, typer.Option(help="Passes over the data.")] = 2.0,
    max_steps: Annotated[int | None, typer.Option(min=1, help="Stop after N steps.")] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = 4,
    learning_rate: Annotated[
        float | None, typer.Option(help="Default 2e-4 LoRA, 2e-5 full.")
    ] = None,
    max_length: Annotated[int, typer.Option(min=16, help="Tokens per row at most.")] = 1024,
    seed: Annotated[int, typer.Option()] = 0,
    save_steps: Annotated[int, typer.Option(min=1, help="Checkpoint every N steps.")] = 10,
    resume: Annotated[bool, typer.Option(help="Continue from the last checkpoint in OUT.")] = False,
    device: Annotated[str, typer.Option(help="auto | cpu | gpu.")] = "auto",
) -> None:
    """Fine-tune on loss-masked data (TRL SFTTrainer, peft LoRA); writes a servable model dir.

    Example: startbox rft train data/ --out run1 --max-steps 30
    (then: startbox model serve --model run1/model --port 8020)
    """
    from model_host.train import TrainOptions

    options = TrainOptions(lora=lora, lora_rank=lora_rank, epochs=epochs, max_steps=max_steps,
                           batch_size=batch_size, learning_rate=learning_rate,
                           max_length=max_length, seed=seed, save_steps=save_steps,
                           device=device)  # fmt: skip
    result = _train(_base_dir(base), data, out, options, resume)
    loss = result.loss_curve[-1].loss if result.loss_curve else float("nan")
    console.print(f"wrote {result.model_dir} ({result.steps} steps, {result.seconds:.0f} s, "
                  f"final loss {loss:.4f}); serve it: startbox model serve --model "
                  f"{result.model_dir}")  # fmt: skip


def _train(base: str, data: Path, out: Path, options: TrainOptions, resume: bool) -> TrainResult:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from model_host.train import LossPoint, train

    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), "loss {task.fields[loss]}",
               "{task.fields[rate]} tok/s", TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("training", total=None, loss="-", rate="-")

        def report(step: int, total: int, point: LossPoint) -> None:
            progress.update(task, completed=step, total=total, loss=f"{point.loss:.4f}",
                            rate=f"{point.tokens_per_s:.0f}")  # fmt: skip
            if not console.is_terminal:
                console.print(
                    f"step {step}/{total} loss {point.loss:.4f} {point.tokens_per_s:.0f} tok/s"
                )

        try:
            return train(base, data, out, options, resume, report)
        except (FileNotFoundError, ValueError, RuntimeError) as exc:
            raise typer.BadParameter(str(exc)) from None


def _base_dir(base: str | None) -> str:
    from model_host.prepare import prepare_model
    from model_host.settings import EMBEDDED_MODEL, ModelSettings

    return str(prepare_model(base or EMBEDDED_MODEL, ModelSettings().home))


def _tokenizer(base: str | None) -> PreTrainedTokenizerBase:
    from model_host.template import ChatTemplate

    return ChatTemplate.load(_base_dir(base)).tokenizer


@app.command("run")
def run_loop(
    config: Annotated[Path, typer.Argument(help="A TOML file (see README: Hint-RFT).")],
    dry_run: Annotated[bool, typer.Option(help="Print the steps, run nothing.")] = False,
) -> None:
    """The whole loop: problems, baseline, then per round collect, filter, export, train,
    serve and eval; each step resumes, so a rerun continues where it stopped.

    Example: startbox rft run examples/rft.toml --dry-run
    """
    from pydantic import ValidationError

    from workflows.rft.loop import LoopConfig, plan, run

    try:
        config_of = LoopConfig.load(config)
        steps = plan(config_of)
    except (OSError, ValueError, ValidationError) as exc:
        raise typer.BadParameter(f"{config}: {exc}") from None
    if dry_run:
        import shlex

        for step in steps:
            env = " ".join(f"{k}={v}" for k, v in step.env.items())
            if step.server:
                typer.echo(f"# (serving on :{step.port}) {shlex.join(step.server)} &")
            typer.echo(f"# {step.name}\n{env + ' ' if env else ''}{shlex.join(step.argv)}")
        return
    try:
        timings = run(steps, console.print)
    except RuntimeError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    show_loop(config_of.workdir, config_of.rounds, timings)


def show_loop(workdir: Path, rounds: int, timings: list[Timing]) -> None:
    """The loop's table: each eval (baseline, round 1 ...) side by side, then the step times."""
    from rich.table import Table

    from workflows.rft.evaluate import compare, evaluate
    from workflows.rft.trajectory import read_trajectories

    names = ["baseline", *(f"round {r}" for r in range(1, rounds + 1))]
    reports = {name: evaluate(read_trajectories(workdir / f"eval-{i}.jsonl"))
               for i, name in enumerate(names)}  # fmt: skip
    view = Table(title="rft run: wall time per step")
    view.add_column("step", style="bold")
    view.add_column("seconds", justify="right")
    for timing in timings:
        view.add_row(timing.step, "done before" if timing.skipped else f"{timing.seconds:.0f}")
    view.add_row("total", f"{sum(t.seconds for t in timings):.0f}")
    out = Console()
    out.print(compare(reports))
    out.print(view)
    record = workdir / "loop.json"
    record.write_text(json.dumps({"steps": [t.model_dump() for t in timings],
                                  "evals": {n: r.model_dump() for n, r in reports.items()}},
                                 indent=2) + "\n", encoding="utf-8")  # fmt: skip
    console.print(f"wrote {record} (the step times and every eval)")


def show_eval(out: Path, baseline: Path | None) -> dict[str, EvalReport]:
    """Print the eval (beside its baseline) and write OUT.report.json."""
    from workflows.rft.evaluate import compare, evaluate
    from workflows.rft.trajectory import read_trajectories

    reports = {}
    if baseline is not None:
        reports["before"] = evaluate(read_trajectories(baseline))
    reports["after" if baseline else "model"] = report = evaluate(read_trajectories(out))
    path = out.with_name(out.name + ".report.json")
    path.write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    Console().print(compare(reports))
    console.print(f"report written to {path}")
    return reports


def _options(**overrides: object) -> RunOptions:
    from pydantic import ValidationError

    from agent.settings import AgentSettings

    try:
        return AgentSettings().run_options(**overrides)
    except ValidationError as exc:
        raise typer.BadParameter(str(exc)) from None


def _model(model: str | None, base_url: str | None) -> ModelSettings:
    from workflows.cli import _model_settings

    return _model_settings(model, base_url)


def _problems(data: Path, kind: str, limit: int | None) -> list[Problem]:
    from workflows.cli import _problems as load

    return load(str(data), kind, [], limit)


@dataclasses.dataclass
class Runs:
    """Where and how `collect` and `eval` run their (problem, sample) pairs: in-process with
    the batch machinery, or as a queued batch that `startbox worker`s solve."""

    out: Path
    samples: int
    concurrency: int
    round_tokens: int | None
    queue: str | None
    queue_wait: float
    redis_url: str | None
    label: str = "collecting"

    def run(self, chosen: list[Problem], options: RunOptions, model: ModelSettings) -> None:
        if self.queue:
            from workflows.cli import _with_redis

            _with_redis(self.redis_url, lambda redis: self.on_queue(redis, chosen, options))
        else:
            uvloop.run(self.in_process(chosen, options, model))
        from workflows.runner import pending

        todo, _ = pending(chosen, self.samples, self.out)
        if todo:  # the model server or sandbox failed them: training or comparing would mislead
            console.print(f"[red]error:[/] {len(todo)} runs failed or are missing in {self.out} "
                          "(see their `detail`); rerun to retry them")  # fmt: skip
            raise typer.Exit(1)

    async def in_process(
        self, chosen: list[Problem], options: RunOptions, model: ModelSettings
    ) -> None:
        from workflows.rft.collect import open_agent, trajectory_of
        from workflows.rft.trajectory import Trajectory
        from workflows.runner import pending, run_batch

        todo, done = pending(chosen, self.samples, self.out)
        console.print(f"{len(todo)} runs to do, {done} already in {self.out}")
        extra = {"round_tokens": self.round_tokens} if self.round_tokens else {}
        async with open_agent(
            model, self.out, self.concurrency, progress=console.print, **extra
        ) as (agent, grader):
            with _progress() as progress:
                task = progress.add_task(self.label, total=len(todo), right=0, tools=0)
                right = tools = 0

                def tick(trajectory: Trajectory) -> None:
                    nonlocal right, tools
                    right += trajectory.correct
                    tools += trajectory.tool_calls > 0
                    progress.update(task, advance=1, right=right, tools=tools)

                outcome = await run_batch(
                    agent, grader, chosen, self.out, options, self.samples, self.concurrency,
                    tick, trajectory_of,
                )  # fmt: skip
        console.print(
            f"wrote {outcome.ran} trajectories to {self.out} ({outcome.skipped} were there)"
        )

    async def on_queue(self, redis: ArqRedis, chosen: list[Problem], options: RunOptions) -> None:
        """Submit what is not done, wait for the workers, write every trajectory to `out`."""
        import asyncio
        import time

        from workflows import queue
        from workflows.rft.trajectory import Trajectory, write_trajectories

        name = self.queue or ""
        total = len(chosen) * self.samples
        enqueued, present = await queue.submit(
            redis, name, chosen, self.samples, options, solver="trajectory"
        )
        console.print(f"batch {name}: {enqueued} jobs queued, {present} already queued or done "
                      "(run `startbox worker` to solve them)")  # fmt: skip
        deadline = time.monotonic() + self.queue_wait
        with _progress() as progress:
            task = progress.add_task("on the queue", total=total, right="-", tools="-")
            while (done := await queue.done_count(redis, name)) < total:
                progress.update(task, completed=done)
                if time.monotonic() > deadline:
                    raise typer.BadParameter(
                        f"batch {name}: {done} of {total} done after {self.queue_wait:.0f} s; "
                        "start more `startbox worker`s and rerun (done jobs are kept)"
                    )
                await asyncio.sleep(1.0)
            rows = await queue.results(redis, name, Trajectory)
            right, tools = sum(r.correct for r in rows), sum(r.tool_calls > 0 for r in rows)
            progress.update(task, completed=total, right=right, tools=tools)
        write_trajectories(rows, self.out)
        console.print(f"wrote {len(rows)} trajectories of batch {name} to {self.out}")


def _progress() -> Progress:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(),
               "{task.fields[right]} right, {task.fields[tools]} used tools",
               TimeRemainingColumn())  # fmt: skip
    return Progress(*columns, console=console)
