"""`rft train` on the CPU: two steps on a repeated batch lower the loss, and the merged
directory it writes is served by a real vLLM through `startbox model serve`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from model_host.settings import ModelSettings
from model_host.template import ChatTemplate
from model_host.train import CARD, TrainOptions, train
from tests.model_host.fixtures import STARTUP_TIMEOUT, startbox_cli
from tests.ports import free_port
from workflows.rft.loop import wait_ready

TRAINED = "rft-trained"


def _data(template: ChatTemplate, path: Path) -> Path:
    """One short row, twice: each step sees the same batch."""
    tokenizer = template.tokenizer
    prompt = template.render([{"role": "user", "content": "What is 1234 * 5678?"}])
    answer = "```python\nprint(1234 * 5678)\n```" + tokenizer.eos_token
    prompt_ids = tokenizer.encode(prompt, add_special_tokens=False)
    answer_ids = tokenizer.encode(answer, add_special_tokens=False)
    row = {"input_ids": prompt_ids + answer_ids, "labels": [-100] * len(prompt_ids) + answer_ids}
    path.write_text((json.dumps(row) + "\n") * 2, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(model_dir: Path, template: ChatTemplate, tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("train")
    options = TrainOptions(max_steps=2, batch_size=2, learning_rate=1e-3, seed=0, save_steps=1)
    return train(str(model_dir), _data(template, work / "tokens.jsonl"), work / "out", options)


def test_two_cpu_steps_lower_the_loss_and_write_a_card(trained) -> None:
    losses = [point.loss for point in trained.loss_curve]
    assert len(losses) == 2 and losses[1] < losses[0]
    card = json.loads((trained.model_dir / CARD).read_text())
    assert card["steps"] == 2 and len(card["data_hash"]) == 64 and card["options"]["lora"]
    assert ChatTemplate.load(str(trained.model_dir)).tokenizer.chat_template  # template kept
    checkpoints = sorted((trained.model_dir.parent / "checkpoints").glob("checkpoint-*"))
    assert checkpoints, "no checkpoint for --resume"


def test_vllm_serves_the_trained_directory(trained, model_settings: ModelSettings) -> None:
    port = free_port()
    env = {**os.environ, "STARTBOX_HOME": str(model_settings.home),
           "STARTBOX_MODEL_CPU_KV_CACHE_GIB": "1"}  # fmt: skip
    command = [*startbox_cli(), "model", "serve", "--model", str(trained.model_dir), "--port",
               str(port), "--served-name", TRAINED, "--max-model-len", "2048",
               "--no-compile"]  # fmt: skip
    log = trained.model_dir.parent / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(process, url, STARTUP_TIMEOUT)
        reply = httpx.post(
            f"{url}/v1/completions",
            json={"model": TRAINED, "prompt": "What is 1234 * 5678?", "max_tokens": 8},
            timeout=120,
        )
        assert reply.status_code == 200 and reply.json()["usage"]["completion_tokens"] > 0
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def test_empty_data_is_refused_in_one_line(model_dir: Path, tmp_path: Path) -> None:
    """A round whose filter kept nothing stops before any model is loaded."""
    (tmp_path / "tokens.jsonl").write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match="holds no rows: the filter kept nothing"):
        train(str(model_dir), tmp_path, tmp_path / "out", TrainOptions(max_steps=1))
