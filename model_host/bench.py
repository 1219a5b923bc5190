"""`startbox model bench`: what the model host costs and what prefix caching saves.

Throughput: N concurrent streams of `max_tokens` each (ignore_eos, so every stream generates the
same number of tokens), through our client and through the plain `openai` client side by side.
Continuation: a long prompt ends in a code block; the follow-up request adds the tool output.
With prefix caching the follow-up reuses the prefix's KV blocks; without, a fresh vLLM
`cache_salt` per request makes it recompute them. Only the time to first token differs.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid

import httpx
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from model_host.client import CompletionClient, server_root
from model_host.metrics import PREFIX_CACHE_HITS, read_metrics
from model_host.profiles import Sampling
from model_host.template import ChatTemplate

SAMPLING = Sampling(temperature=0.0, top_p=1.0, top_k=-1)
QUESTION = "How many positive integers below 10^{n} are divisible by 7 but not by 11?"
PROGRAM = """count = sum(1 for k in range(1, 10**{n}) if k % 7 == 0 and k % 11 != 0)
print(count)
"""


class ThroughputRow(BaseModel):
    client: str
    concurrency: int
    requests: int
    completion_tokens: int
    wall_s: float
    tokens_per_s: float
    ttft_median_s: float
    client_cpu_ms_per_token: float  # the bench process's own CPU time: what the client costs


class ContinuationRow(BaseModel):
    prefix_caching: bool
    runs: int
    prompt_tokens: int
    ttft_median_s: float
    ttft_min_s: float
    cached_tokens_per_run: float | None  # from vLLM's /metrics; None if the server has none


class BenchReport(BaseModel):
    base_url: str
    model: str
    max_tokens: int
    load_before: float  # 1-minute load average: other work on the machine skews the figures
    load_after: float
    throughput: list[ThroughputRow]
    continuation: list[ContinuationRow]


async def run_bench(
    base_url: str,
    model: str,
    template: ChatTemplate,
    *,
    concurrency: list[int],
    max_tokens: int,
    repeats: int,
    console: Console,
) -> BenchReport:
    prompt = template.render(
        [{"role": "user", "content": "Write a long story about a lighthouse keeper."}]
    )
    load_before = os.getloadavg()[0]
    rows: list[ThroughputRow] = []
    async with CompletionClient(base_url, model, timeout=600) as client:
        await client.complete(prompt, max_tokens=4, stop=[], sampling=SAMPLING)  # warm up
        for level in concurrency:
            for name, run in (("startbox", _ours), ("openai", _openai)):
                console.print(f"throughput: {name} client, concurrency {level}")
                rows.append(await run(client, base_url, model, prompt, level, max_tokens))
        continuation = [
            await _continuation(client, base_url, template, cached, repeats, console)
            for cached in (True, False)
        ]
    return BenchReport(
        base_url=base_url,
        model=model,
        max_tokens=max_tokens,
        load_before=load_before,
        load_after=os.getloadavg()[0],
        throughput=rows,
        continuation=continuation,
    )


async def _ours(
    client: CompletionClient, base_url: str, model: str, prompt: str, level: int, max_tokens: int
) -> ThroughputRow:
    async def one() -> tuple[int, float]:
        done = await client.complete(
            prompt, max_tokens=max_tokens, stop=[], sampling=SAMPLING,
            extra={"ignore_eos": True},
        )  # fmt: skip
        return done.completion_tokens, done.first_token_s or 0.0

    started, cpu = time.monotonic(), time.process_time()
    results = await asyncio.gather(*(one() for _ in range(level)))
    return _row("startbox", level, results, time.monotonic() - started, time.process_time() - cpu)


async def _openai(
    client: CompletionClient, base_url: str, model: str, prompt: str, level: int, max_tokens: int
) -> ThroughputRow:
    from openai import AsyncOpenAI

    api = AsyncOpenAI(base_url=f"{server_root(base_url)}/v1", api_key="unused", timeout=600)

    async def one() -> tuple[int, float]:
        started = time.monotonic()
        first: float | None = None
        tokens = 0
        stream = await api.completions.create(
            model=model, prompt=prompt, max_tokens=max_tokens, stream=True,
            temperature=SAMPLING.temperature, top_p=SAMPLING.top_p,
            stream_options={"include_usage": True},
            extra_body={"ignore_eos": True, "add_special_tokens": False},
        )  # fmt: skip
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].text and first is None:
                first = time.monotonic() - started
            if chunk.usage:
                tokens = chunk.usage.completion_tokens
        return tokens, first or 0.0

    try:
        started, cpu = time.monotonic(), time.process_time()
        results = await asyncio.gather(*(one() for _ in range(level)))
        return _row("openai", level, results, time.monotonic() - started, time.process_time() - cpu)
    finally:
        await api.close()


def _row(
    client: str, level: int, results: list[tuple[int, float]], wall: float, cpu: float
) -> ThroughputRow:
    tokens = sum(count for count, _ in results)
    return ThroughputRow(
        client_cpu_ms_per_token=round(1000 * cpu / max(tokens, 1), 3),
        client=client,
        concurrency=level,
        requests=len(results),
        completion_tokens=tokens,
        wall_s=round(wall, 3),
        tokens_per_s=round(tokens / wall, 2),
        ttft_median_s=round(statistics.median(first for _, first in results), 3),
    )


def continuation_prompts(template: ChatTemplate, n: int, nonce: str) -> tuple[str, str]:
    """A long prompt ending in a closed code block, and the same plus the tool output.

    `nonce` (first in the prompt) keeps earlier bench runs from warming the cache and `n` makes
    each pair unique within a run; runs without prefix caching reuse both but send a fresh
    `cache_salt` with every request, so they cannot hit the cache either.
    """
    reasoning = " ".join(
        f"Step {i}: multiples of 7 below 10^{n} number floor((10^{n}-1)/7), and those also "
        f"divisible by 11 are multiples of 77, so I subtract floor((10^{n}-1)/77)."
        for i in range(40)
    )
    prefix = (
        template.render([{"role": "user", "content": f"[{nonce}] " + QUESTION.format(n=n)}])
        + reasoning
        + "\nWait, maybe using Python here is a good idea.\n```python\n"
        + PROGRAM.format(n=n)
        + "```"
    )
    return prefix, prefix + "\n```output\n" + str(n * 1234567) + "\n```\n"


async def _continuation(
    client: CompletionClient,
    base_url: str,
    template: ChatTemplate,
    cached: bool,
    repeats: int,
    console: Console,
) -> ContinuationRow:
    console.print(f"continuation after a tool output, prefix caching {'on' if cached else 'off'}")
    firsts: list[float] = []
    hits: list[float] = []
    prompt_tokens = 0
    nonce = uuid.uuid4().hex[:12]
    async with httpx.AsyncClient(base_url=server_root(base_url), timeout=30) as http:
        for run in range(repeats):
            prefix, follow_up = continuation_prompts(template, run, nonce)
            salt = {} if cached else {"cache_salt": uuid.uuid4().hex}
            # the first request computes the prefix (the code block the model just wrote)
            await client.complete(prefix, max_tokens=1, stop=[], sampling=SAMPLING, extra=salt)
            fresh = {} if cached else {"cache_salt": uuid.uuid4().hex}
            before = await read_metrics(http)
            done = await client.complete(
                follow_up, max_tokens=8, stop=[], sampling=SAMPLING, extra=fresh
            )
            after = await read_metrics(http)
            firsts.append(done.first_token_s or done.total_s)
            prompt_tokens = done.prompt_tokens
            if PREFIX_CACHE_HITS in after:
                hits.append(after[PREFIX_CACHE_HITS] - before.get(PREFIX_CACHE_HITS, 0.0))
    return ContinuationRow(
        prefix_caching=cached,
        runs=repeats,
        prompt_tokens=prompt_tokens,
        ttft_median_s=round(statistics.median(firsts), 3),
        ttft_min_s=round(min(firsts), 3),
        cached_tokens_per_run=round(statistics.mean(hits), 1) if hits else None,
    )


def render(console: Console, report: BenchReport) -> None:
    table = Table(title=f"generation, {report.max_tokens} tokens per request ({report.model})")
    for column in ("client", "concurrency", "tokens", "wall s", "tokens/s", "TTFT median s",
                   "client CPU ms/token"):  # fmt: skip
        table.add_column(column, justify="right")
    for row in report.throughput:
        table.add_row(
            row.client, str(row.concurrency), str(row.completion_tokens), f"{row.wall_s:.2f}",
            f"{row.tokens_per_s:.1f}", f"{row.ttft_median_s:.3f}",
            f"{row.client_cpu_ms_per_token:.2f}",
        )  # fmt: skip
    console.print(table)
    console.print(f"load average (1 min): {report.load_before:.2f} before, "
                  f"{report.load_after:.2f} after")  # fmt: skip
    table = Table(title="continuation after a tool output (time to first token)")
    for column in ("prefix caching", "runs", "prompt tokens", "TTFT median s", "TTFT min s",
                   "cached tokens/run"):  # fmt: skip
        table.add_column(column, justify="right")
    for step in report.continuation:
        tokens = step.cached_tokens_per_run
        cached = "n/a" if tokens is None else f"{tokens:.0f}"
        table.add_row(
            "on" if step.prefix_caching else "off", str(step.runs), str(step.prompt_tokens),
            f"{step.ttft_median_s:.3f}", f"{step.ttft_min_s:.3f}", cached,
        )  # fmt: skip
    console.print(table)


def as_markdown(report: BenchReport) -> str:
    """The tables as Markdown, for docs/benchmarks.md."""
    lines = [
        f"Load average (1 min): {report.load_before:.2f} before, {report.load_after:.2f} after.",
        "",
        "| client | concurrency | tokens | wall s | tokens/s | TTFT median s "
        "| client CPU ms/token |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r.client} | {r.concurrency} | {r.completion_tokens} | {r.wall_s:.2f} | "
        f"{r.tokens_per_s:.1f} | {r.ttft_median_s:.3f} | {r.client_cpu_ms_per_token:.2f} |"
        for r in report.throughput
    ]
    lines += [
        "",
        "| prefix caching | runs | prompt tokens | TTFT median s | TTFT min s "
        "| cached tokens/run |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {'on' if r.prefix_caching else 'off'} | {r.runs} | {r.prompt_tokens} | "
        f"{r.ttft_median_s:.3f} | {r.ttft_min_s:.3f} | "
        f"{'n/a' if r.cached_tokens_per_run is None else f'{r.cached_tokens_per_run:.0f}'} |"
        for r in report.continuation
    ]
    return "\n".join(lines)
