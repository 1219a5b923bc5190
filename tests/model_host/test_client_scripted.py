"""Client behaviour a real vLLM never shows, on a scripted loopback server."""

from __future__ import annotations

import asyncio

import pytest

from model_host.client import Completion, CompletionClient, Delta, ModelUnavailable
from model_host.profiles import Sampling
from model_host.scripted import Reply, ScriptedServer

SAMPLING = Sampling(temperature=0.0, top_p=1.0)


async def _collect(client: CompletionClient, stop: list[str]) -> tuple[list[str], Completion]:
    deltas: list[str] = []
    final: Completion | None = None
    async for event in client.stream("prompt", max_tokens=50, stop=stop, sampling=SAMPLING):
        if isinstance(event, Delta):
            deltas.append(event.text)
        else:
            assert final is None, "exactly one Completion"
            final = event
    assert final is not None
    return deltas, final


async def test_a_server_that_ignores_stop_strings_is_cut_by_the_client() -> None:
    pieces = ["x = 1\n", "print(x)\n``", "`output\n1\n```", " more"]
    async with (
        ScriptedServer([Reply(pieces=pieces, finish_reason="length")]) as server,
        CompletionClient(server.base_url, "m", timeout=10) as client,
    ):
        deltas, final = await _collect(client, ["```output", "</think>"])
    assert "".join(deltas) == final.text == "x = 1\nprint(x)\n"
    assert (final.finish_reason, final.stop_reason) == ("stop", "```output")
    assert all("`" not in delta for delta in deltas), "a stop string prefix leaked"


async def test_stop_reason_comes_from_sglang_style_matched_stop() -> None:
    reply = Reply(pieces=["abc"], extra_final={"matched_stop": "</think>"})
    async with (
        ScriptedServer([reply]) as server,
        CompletionClient(server.base_url, "m", timeout=10) as client,
    ):
        _, final = await _collect(client, ["</think>"])
    assert final.stop_reason == "</think>"


async def test_without_usage_tokens_are_counted_locally() -> None:
    async with ScriptedServer([Reply(pieces=["one ", "two ", "three"])]) as server:
        counter = lambda text: len(text.split())  # noqa: E731
        async with CompletionClient(server.base_url, "m", timeout=10, token_counter=counter) as c:
            _, final = await _collect(c, [])
    assert (final.prompt_tokens, final.completion_tokens) == (1, 3)
    assert not final.usage_from_server
    assert final.stop_reason is None


async def test_5xx_is_retried_with_backoff() -> None:
    replies = [Reply(status=503), Reply(status=502), Reply(pieces=["ok"], usage=_usage())]
    async with ScriptedServer(replies) as server:
        async with CompletionClient(server.base_url, "m", timeout=30, retries=3) as client:
            _, final = await _collect(client, [])
        assert len(server.requests) == 3
    assert final.text == "ok" and final.usage_from_server


async def test_persistent_5xx_gives_up_with_model_unavailable() -> None:
    async with (
        ScriptedServer([Reply(status=500)] * 3) as server,
        CompletionClient(server.base_url, "m", timeout=30, retries=2) as client,
    ):
        with pytest.raises(ModelUnavailable, match="HTTP 500"):
            await client.complete("p", max_tokens=5, stop=[], sampling=SAMPLING)


async def test_a_stream_that_breaks_midway_is_reported() -> None:
    async with (
        ScriptedServer([Reply(pieces=["a", "b", "c"], drop_after=2)]) as server,
        CompletionClient(server.base_url, "m", timeout=10) as client,
    ):
        with pytest.raises(ModelUnavailable, match="broke after 2 characters"):
            await client.complete("p", max_tokens=5, stop=[], sampling=SAMPLING)


async def test_the_request_carries_prompt_stop_sampling_and_usage_option() -> None:
    async with ScriptedServer([Reply(pieces=["x"], usage=_usage())]) as server:
        async with CompletionClient(server.base_url + "/v1/", "m", timeout=10) as client:
            await client.complete(
                "P", max_tokens=7, stop=["S"], sampling=get_sampling(), seed=3,
                extra={"ignore_eos": True},
            )  # fmt: skip
        body = server.requests[0]
    assert body["prompt"] == "P" and body["model"] == "m" and body["stop"] == ["S"]
    assert body["max_tokens"] == 7 and body["seed"] == 3 and body["ignore_eos"] is True
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert (body["temperature"], body["top_p"], body["top_k"]) == (0.6, 0.95, 20)


async def test_client_outside_async_with_says_how_to_use_it() -> None:
    client = CompletionClient("http://127.0.0.1:9", "m")
    with pytest.raises(RuntimeError, match="async with"):
        await asyncio.wait_for(client.models(), timeout=5)


def get_sampling() -> Sampling:
    return Sampling(temperature=0.6, top_p=0.95, top_k=20)


def _usage() -> dict[str, int]:
    return {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
