"""vLLM's Prometheus /metrics, summed over labels: enough to see prefix-cache hits."""

from __future__ import annotations

import httpx

PREFIX_CACHE_QUERIES = "vllm:prefix_cache_queries_total"  # prompt tokens looked up
PREFIX_CACHE_HITS = "vllm:prefix_cache_hits_total"  # of those, tokens found in the cache


def parse_metrics(text: str) -> dict[str, float]:
    totals: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_part, _, value = line.rpartition(" ")
        name = name_part.split("{", 1)[0].strip()
        try:
            totals[name] = totals.get(name, 0.0) + float(value)
        except ValueError:
            continue
    return totals


async def read_metrics(http: httpx.AsyncClient) -> dict[str, float]:
    """All metrics of the server at `http.base_url`; empty if it has no /metrics."""
    try:
        response = await http.get("/metrics")
    except httpx.HTTPError:
        return {}
    return parse_metrics(response.text) if response.status_code == 200 else {}
