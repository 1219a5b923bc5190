"""`startbox agent bench`: what the loop costs on top of the model and the sandbox.

1. Orchestration overhead per round, excluding model and code time, against a scripted server
   in its own process (so the model costs ~nothing and varies not at all), on uvloop and on
   asyncio's own loop.
2. Generated tokens/s of the agent against raw completions on the same prompts and token counts
   at concurrency 8 on a real server (vLLM): the agent's continuations must hit the prefix cache
   for the ratio to stay near 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import uvloop
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from agent.events import RunFinished
from agent.service import Agent
from agent.settings import AgentSettings, RunOptions
from model_host.scripted import Reply, scripted_process
from model_host.settings import ModelSettings
from sandbox.settings import SandboxSettings

QUESTIONS = [
    "What is the sum of the first 50 prime numbers?",
    "How many integers between 1 and 1000 are divisible by 3 or 5?",
    "What is the remainder when 2^100 is divided by 7?",
    "Find the number of divisors of 3600.",
    "What is 17 factorial modulo 1000003?",
    "How many ways can 8 queens be placed on a chessboard without attacking each other?",
    "What is the 30th Fibonacci number?",
    "What is the least common multiple of 1 through 20?",
]


class OverheadResult(BaseModel):
    runs: int
    rounds_per_run: float
    p50_ms_per_round: float
    p99_ms_per_round: float
    persist: bool
    loop: str


class ThroughputResult(BaseModel):
    concurrency: int
    agent_tokens: int
    agent_tokens_per_s: float
    raw_tokens_per_s: float
    ratio: float


class ApiResult(BaseModel):
    concurrency: int
    runs: int
    with_code: bool
    runs_per_s: float
    sse_p50_ms: float
    in_process_p50_ms: float

    @property
    def sse_added_ms(self) -> float:
        return self.sse_p50_ms - self.in_process_p50_ms


class CodeRunsResult(BaseModel):
    """Code-running runs/s (one code round each, scripted model) by how runs get a sandbox."""

    concurrency: int
    recycled_runs_per_s: float  # runs of one owner reuse its reset containers
    per_run_runs_per_s: float  # no owner: a fresh container per run (sandbox v1)


class AgentBenchReport(BaseModel):
    overhead: list[OverheadResult]
    throughput: ThroughputResult | None
    api: list[ApiResult] = []
    code_runs: CodeRunsResult | None = None


TOOL_OUTPUT = "```output\n"  # the output fence as appended to a transcript (not the instruction)
OVERHEAD_TURNS = [
    "<think>\n```python\nx = 1\n```\n",
    "```python\nx += 1\n```\n",
    "```python\nx += 1\n```\n",
    "</think>",
]


def five_rounds(request: dict[str, Any]) -> Reply:
    """The overhead run: three code rounds, the end of thinking, the answer; each turn chosen
    from how far the prompt got, so one server process serves every run."""
    prompt = request.get("prompt", "")
    if prompt.endswith("</think>"):
        return Reply(text="\\boxed{3}")
    return Reply(text=OVERHEAD_TURNS[min(prompt.count(TOOL_OUTPUT), len(OVERHEAD_TURNS) - 1)])


def staged(request: dict[str, Any]) -> Reply:
    """One code round, then the answer, chosen from how far the prompt got."""
    prompt = request.get("prompt", "")
    if TOOL_OUTPUT not in prompt:
        return Reply(text="<think>\n```python\nprint(sum(range(10)))\n```\n")
    if not prompt.endswith("</think>"):
        return Reply(text="It is 45.</think>")
    return Reply(text="\n\n\\boxed{45}")


def answer_only(request: dict[str, Any]) -> Reply:
    prompt = request.get("prompt", "")
    return Reply(text="\n\n\\boxed{1}" if prompt.endswith("</think>") else "<think>\nok</think>")


async def api(runs: int, concurrency: int, home: Path, with_code: bool) -> ApiResult:
    """Runs/s through POST /v1/solve at `concurrency`, and one run's latency through
    POST /v1/runs + SSE against `Agent.solve` in-process, on a uvicorn in this process."""
    import httpx

    from agent.api.app import create_app
    from agent.api.settings import ApiSettings

    responder = "agent.bench:staged" if with_code else "agent.bench:answer_only"
    agents: list[Agent] = []
    async with contextlib.AsyncExitStack() as stack:
        scratch = Path(stack.enter_context(_scratch()))
        base_url = await stack.enter_async_context(scripted_process(responder))

        def factory() -> Agent:
            model = ModelSettings(home=home, base_url=base_url, profile="qwen3",
                                  served_name="scripted")  # fmt: skip
            agent = Agent(AgentSettings(home=home, store_path=scratch / "api.db"), model,
                          SandboxSettings(home=home, pool_size=4))  # fmt: skip
            agents.append(agent)
            return agent

        settings = ApiSettings(keys="bench", max_concurrent_runs=concurrency, port=_free_port())
        url = await stack.enter_async_context(_served(create_app(settings, factory), settings.port))
        client = await stack.enter_async_context(
            httpx.AsyncClient(base_url=url, headers={"x-api-key": "bench"}, timeout=120)
        )
        rate = await _api_rate(client, runs, concurrency)
        sse, local = await _latencies(client, agents[0], min(runs, 15))
    return ApiResult(
        concurrency=concurrency, runs=runs, with_code=with_code, runs_per_s=rate,
        sse_p50_ms=statistics.median(sse), in_process_p50_ms=statistics.median(local),
    )  # fmt: skip


@contextlib.asynccontextmanager
async def _served(app: Any, port: int) -> AsyncIterator[str]:
    """`app` on a uvicorn in this process until the block ends; its URL."""
    import uvicorn

    web = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
    serving = asyncio.create_task(web.serve())
    try:
        async with asyncio.timeout(120):
            while not web.started:  # uvicorn offers a flag, not an event
                if serving.done():  # it could not start (the port taken, say)
                    serving.result()
                    raise RuntimeError(f"uvicorn stopped before serving on port {port}")
                await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        web.should_exit = True
        await serving


async def _latencies(client: Any, agent: Agent, rounds: int) -> tuple[list[float], list[float]]:
    """One run's latency (ms) over POST /v1/runs + SSE and in-process, alternately, each
    from a warm pool."""
    sse, local = [], []
    await agent.pool.warm()
    for _ in range(rounds):
        sse.append(await _timed(_sse_run(client)))
        await agent.pool.warm()
        local.append(await _timed(_last(agent.solve("bench"))))
        await agent.pool.warm()
    return sse, local


async def _api_rate(client: Any, runs: int, concurrency: int) -> float:
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            response = await client.post("/v1/solve", json={"question": "bench"})
            response.raise_for_status()

    await asyncio.gather(*(one() for _ in range(min(concurrency, runs))))  # warm-up
    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(runs)))
    return runs / (time.perf_counter() - started)


async def _sse_run(client: Any) -> None:
    run_id = (await client.post("/v1/runs", json={"question": "bench"})).json()["id"]
    async with client.stream("GET", f"/v1/runs/{run_id}/events") as events:
        async for line in events.aiter_lines():
            if line == "event: run_finished":
                return


async def _timed(action: Any) -> float:
    started = time.perf_counter()
    await action
    return (time.perf_counter() - started) * 1000


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "uvloop": uvloop.new_event_loop,  # what startbox runs on
    "asyncio": asyncio.new_event_loop,  # the standard loop, for comparison
}


def overhead(runs: int, home: Path, blocks: int = 3) -> list[OverheadResult]:
    """Per-round overhead without and with persistence on each event loop, measured in
    alternating blocks of runs so both loops see the same machine (a VM's speed drifts by tens
    of percent over a minute). Each loop keeps one runner and its agents for all its blocks,
    and one scripted server serves both loops, so a block costs its runs, not a server and a
    container start."""
    samples: dict[tuple[bool, str], list[float]] = {}
    calls: dict[bool, list[int]] = {False: [], True: []}
    per_block = max(2, -(-runs // blocks))  # the first is dropped
    with contextlib.ExitStack() as runners:
        benches: dict[str, tuple[asyncio.Runner, _OverheadBench]] = {}
        base_url: str | None = None
        for name, factory in LOOPS.items():
            runner = runners.enter_context(asyncio.Runner(loop_factory=factory))
            bench = runner.run(_OverheadBench.open(home, base_url))
            base_url = bench.base_url
            benches[name] = runner, bench
        try:
            for persist in (False, True):
                for _ in range(blocks):
                    for name, (runner, bench) in benches.items():
                        block, block_calls = runner.run(bench.runs(persist, per_block))
                        # a block's first run pays what the last block left behind
                        samples.setdefault((persist, name), []).extend(block[1:])
                        calls[persist] += block_calls
        finally:
            for runner, bench in reversed(benches.values()):  # the server's owner closes last
                runner.run(bench.stack.aclose())
    results = []
    for (persist, name), values in samples.items():
        ordered = sorted(values)
        results.append(
            OverheadResult(
                runs=len(ordered),
                rounds_per_run=statistics.mean(calls[persist]),
                p50_ms_per_round=statistics.median(ordered),
                p99_ms_per_round=ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
                persist=persist,
                loop=name,
            )
        )
    return results


class _OverheadBench:
    """One loop's agents (persistence off and on) for the overhead runs.

    The scripted server runs in a process of its own, as vLLM does, so its work is not billed
    to the loop. The pools keep no warm container; the runs share one owner, so each agent's
    first run starts a container inside its first `session.run` (sandbox time) and every later
    run gets it back reset by its supervisor; no start competes for the CPU mid-run.
    """

    def __init__(
        self, base_url: str, agents: dict[bool, Agent], stack: contextlib.AsyncExitStack
    ) -> None:
        self.base_url = base_url
        self.agents = agents
        self.stack = stack

    @classmethod
    async def open(cls, home: Path, base_url: str | None) -> _OverheadBench:
        """Agents on `base_url`, or on a scripted server of their own when it is None. Each
        agent has a run store of its own (`_agent`): a loop paused between its blocks may hold
        a write transaction open, and another loop's writes to the same file would fail."""
        stack = contextlib.AsyncExitStack()
        try:
            if base_url is None:
                server = scripted_process("agent.bench:five_rounds")
                base_url = await stack.enter_async_context(server)
            agents = {
                persist: await stack.enter_async_context(
                    _agent(base_url, persist, home, "qwen3", pool=0)
                )
                for persist in (False, True)
            }
            # both containers start at once, before any measured run
            await asyncio.gather(*(_last(_overhead_run(agent)) for agent in agents.values()))
        except BaseException:
            await stack.aclose()
            raise
        return cls(base_url, agents, stack)

    async def runs(self, persist: bool, count: int) -> tuple[list[float], list[int]]:
        """Per-round wall time minus model and sandbox time, per run."""
        agent = self.agents[persist]
        samples: list[float] = []
        calls: list[int] = []
        for _ in range(count):
            await agent.pool.warm()  # the last run's reset is done before this one starts
            finished = await _last(_overhead_run(agent))
            t = finished.timings_ms
            samples.append(
                (t["total"] - t.get("model", 0) - t.get("sandbox", 0)) / finished.usage.model_calls
            )
            calls.append(finished.usage.model_calls)
        return samples, calls


def _overhead_run(agent: Agent) -> AsyncIterator[Any]:
    return agent.solve("bench", RunOptions(timeout=60), owner="bench-overhead")


async def throughput(
    base_url: str | None, concurrency: int, home: Path, blocks: int = 3
) -> ThroughputResult:
    """Agent runs at `concurrency`, and raw completions of the same prompts and token counts,
    in `blocks` pairs whose order alternates, so the VM's drift weighs on both sides alike."""
    async with _agent(base_url, False, home, None, pool=concurrency) as agent:
        options = RunOptions(thinking_budget=256, answer_budget=64, max_tool_calls=2, seed=0)
        questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(concurrency)]

        async def agent_side() -> list[int]:
            finished = await asyncio.gather(*(_last(agent.solve(q, options)) for q in questions))
            return [f.usage.completion_tokens for f in finished]

        async def raw(question: str, count: int) -> None:
            await agent.client.complete(
                agent.prompt(question, options).text,
                max_tokens=max(count, 1),
                stop=[],
                sampling=agent.sampling(options),
                seed=0,
                extra={"ignore_eos": True, "min_tokens": max(count, 1)},
            )

        async def raw_side(counts: list[int]) -> None:
            await asyncio.gather(*(raw(q, n) for q, n in zip(questions, counts, strict=True)))

        tokens = {"agent": 0, "raw": 0}
        seconds = {"agent": 0.0, "raw": 0.0}
        counts = await agent_side()  # warms the prefix cache and gives the first counts
        for block in range(blocks):
            for side in ("agent", "raw") if block % 2 == 0 else ("raw", "agent"):
                started = time.perf_counter()
                if side == "agent":
                    counts = await agent_side()
                else:
                    await raw_side(counts)
                seconds[side] += time.perf_counter() - started
                tokens[side] += sum(counts)
    agent_rate, raw_rate = tokens["agent"] / seconds["agent"], tokens["raw"] / seconds["raw"]
    return ThroughputResult(
        concurrency=concurrency,
        agent_tokens=tokens["agent"],
        agent_tokens_per_s=agent_rate,
        raw_tokens_per_s=raw_rate,
        ratio=agent_rate / raw_rate,
    )


async def code_runs(home: Path, concurrency: int, seconds: float) -> CodeRunsResult:
    """Runs/s of `staged` runs (one code round, then the answer) at `concurrency`, in-process,
    first as one owner's runs (recycled same-tenant containers), then ownerless (a container
    per run), on the same agent and pool."""
    async with (
        scripted_process("agent.bench:staged") as base_url,
        _agent(base_url, False, home, "qwen3", pool=concurrency) as agent,
    ):

        async def rate(owner: str) -> float:
            await agent.pool.warm()
            deadline = time.perf_counter() + seconds

            async def worker() -> int:
                done = 0
                while time.perf_counter() < deadline:
                    finished = await _last(agent.solve("bench", owner=owner))
                    if finished.status != "ok" or finished.usage.tool_calls != 1:
                        raise RuntimeError(f"a code run did not finish as scripted: {finished}")
                    done += 1
                return done

            started = time.perf_counter()
            counts = await asyncio.gather(*(worker() for _ in range(concurrency)))
            return sum(counts) / (time.perf_counter() - started)

        await _last(agent.solve("bench", owner="bench"))  # the first container start
        recycled = await rate("bench")
        per_run = await rate("")
    return CodeRunsResult(
        concurrency=concurrency, recycled_runs_per_s=recycled, per_run_runs_per_s=per_run
    )


@contextlib.asynccontextmanager
async def _agent(
    base_url: str | None,
    persist: bool,
    home: Path,
    profile: str | None,
    pool: int = 2,
) -> AsyncIterator[Agent]:
    """An agent on the scripted server (a `profile`) or a real one, with a run store of its
    own: agents on different loops never wait on each other's write transactions."""
    scripted = {"profile": profile, "served_name": "scripted"} if profile else {}
    model = ModelSettings.model_validate({"home": home, "base_url": base_url, **scripted})
    with _scratch() as scratch:
        store = Path(scratch) / "runs.db"
        settings = AgentSettings(home=home, persist=persist, store_path=store)
        async with Agent(settings, model, SandboxSettings(home=home, pool_size=pool)) as agent:
            yield agent


def _scratch() -> tempfile.TemporaryDirectory[str]:
    """Where a bench's run stores go: its runs are throwaway, so not into the user's home."""
    return tempfile.TemporaryDirectory(prefix="startbox-bench-")


async def _last(events: AsyncIterator[Any]) -> RunFinished:
    finished = [event async for event in events if isinstance(event, RunFinished)]
    return finished[-1]


def run_bench(
    *,
    base_url: str | None,
    runs: int,
    concurrency: int,
    home: Path,
    console: Console,
    skip_throughput: bool,
    api_runs: int = 0,
    code_seconds: float = 0.0,
) -> AgentBenchReport:
    report = AgentBenchReport(overhead=[], throughput=None)
    if code_seconds:
        with console.status("code-running runs/s: recycled same-owner vs a container per run"):
            report.code_runs = uvloop.run(code_runs(home, 8, code_seconds))
    with console.status("orchestration overhead, persistence off and on, uvloop vs asyncio"):
        report.overhead = overhead(runs, home)
    for with_code in (True, False) if api_runs else ():
        with console.status(f"REST API at concurrency 16 (code: {with_code})"):
            report.api.append(uvloop.run(api(api_runs, 16, home, with_code)))
    if not skip_throughput:
        with console.status(f"agent vs raw completions at concurrency {concurrency}"):
            report.throughput = uvloop.run(throughput(base_url, concurrency, home))
    return report


def render(console: Console, report: AgentBenchReport) -> None:
    table = Table(title="agent orchestration overhead per round (model and code time excluded)")
    for column in ("persist", "loop", "runs", "rounds/run", "p50 ms", "p99 ms", "target"):
        table.add_column(column, justify="right")
    for r in report.overhead:
        table.add_row(
            str(r.persist),
            r.loop,
            str(r.runs),
            f"{r.rounds_per_run:.1f}",
            f"{r.p50_ms_per_round:.2f}",
            f"{r.p99_ms_per_round:.2f}",
            "p50 ≤ 2 ms",
        )
    console.print(table)
    for a in report.api:
        shape = "one code round" if a.with_code else "no code"
        console.print(
            f"REST API, concurrency {a.concurrency}, {shape}: [bold]{a.runs_per_s:.1f} runs/s[/] "
            f"over {a.runs} runs; one run through SSE "
            f"{a.sse_p50_ms:.1f} ms vs in-process {a.in_process_p50_ms:.1f} ms (p50): SSE adds "
            f"{a.sse_added_ms:.1f} ms"
        )
    if report.code_runs:
        c = report.code_runs
        console.print(
            f"code-running runs/s (scripted model, one code round, {c.concurrency} at a time): "
            f"recycled same-owner containers [bold]{c.recycled_runs_per_s:.1f}[/] vs a container "
            f"per run {c.per_run_runs_per_s:.1f} (target ≥ 30)"
        )
    if report.throughput:
        t = report.throughput
        console.print(
            f"concurrency {t.concurrency}: agent {t.agent_tokens_per_s:.1f} tok/s vs raw "
            f"{t.raw_tokens_per_s:.1f} tok/s on {t.agent_tokens} tokens → ratio "
            f"[bold]{t.ratio:.2f}[/] (target ≥ 0.9)"
        )
