"""Preparing models: the embedded conversion is cached and idempotent; bad inputs fail fast."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from model_host.prepare import MARKER, PrepareError, embedded_dir, prepare_model
from model_host.settings import EMBEDDED_MODEL, ModelSettings
from model_host.template import ChatTemplate


def test_embedded_model_is_a_plain_hf_directory(model_dir: Path) -> None:
    names = {path.name for path in model_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", MARKER} <= names
    config = json.loads((model_dir / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert "quantization_config" not in config
    assert not list(model_dir.glob("*.gguf"))


def test_prepare_is_idempotent(model_dir: Path, model_settings: ModelSettings) -> None:
    weights = model_dir / "model.safetensors"
    before = weights.stat().st_mtime_ns
    steps: list[str] = []
    again = prepare_model(EMBEDDED_MODEL, model_settings.home, progress=steps.append)
    assert again == model_dir == embedded_dir(model_settings.home)
    assert weights.stat().st_mtime_ns == before, "prepare converted again"
    assert steps == [], "a cached model needs no work"


def test_prepare_cli_prints_the_directory(model_dir: Path, model_settings: ModelSettings) -> None:
    from typer.testing import CliRunner

    from startbox.cli import app

    result = CliRunner().invoke(
        app, ["model", "prepare"], env={"STARTBOX_HOME": str(model_settings.home)}
    )
    assert result.exit_code == 0, result.output
    assert str(model_dir) in result.stdout.splitlines()


def test_the_embedded_template_renders_chatml(model_dir: Path) -> None:
    template = ChatTemplate.load(str(model_dir))
    prompt = template.render([{"role": "user", "content": "2+2?"}])
    assert prompt.endswith("<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n")
    assert template.count_tokens("<|im_start|>") == 1


def test_a_local_directory_is_used_as_is(model_dir: Path, model_settings: ModelSettings) -> None:
    assert prepare_model(str(model_dir), model_settings.home) == model_dir


def test_a_directory_without_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PrepareError, match=r"config\.json"):
        prepare_model(str(tmp_path), tmp_path)


def test_a_hub_id_offline_names_the_offline_alternatives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # never reach for the hub from a test
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(PrepareError) as failure:
        prepare_model("Qwen/Qwen3-8B", tmp_path)
    message = str(failure.value)
    assert "Qwen/Qwen3-8B" in message and EMBEDDED_MODEL in message and "--base-url" in message


def test_neither_dir_nor_hub_id_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PrepareError, match="neither"):
        prepare_model("not a model", tmp_path)


def test_template_load_without_tokenizer_says_so(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no tokenizer"):
        ChatTemplate.load(str(tmp_path))


def test_a_dir_without_tokenizer_json_renders_the_same(model_dir: Path, tmp_path: Path) -> None:
    """The fast path reads tokenizer.json; any other directory goes through AutoTokenizer (here
    GPT-2 style vocab.json + merges.txt, as older checkpoints ship), which must agree."""
    fast = ChatTemplate.load(str(model_dir))
    bpe = json.loads((model_dir / "tokenizer.json").read_text())["model"]
    (tmp_path / "vocab.json").write_text(json.dumps(bpe["vocab"]))
    merges = [m if isinstance(m, str) else " ".join(m) for m in bpe["merges"]]
    (tmp_path / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    config = json.loads((model_dir / "tokenizer_config.json").read_text())
    config.pop("backend", None)
    config["tokenizer_class"] = "GPT2Tokenizer"
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    for name in ("chat_template.jinja", "config.json"):
        shutil.copy(model_dir / name, tmp_path / name)
    slow = ChatTemplate.load(str(tmp_path))
    messages = [{"role": "user", "content": "What is 12345 * 6789? Use python."}]
    prompt = fast.render(messages)
    assert slow.render(messages) == prompt
    assert slow.tokenizer.encode(prompt) == fast.tokenizer.encode(prompt)  # special tokens too
    text = "```python\nprint(12345 * 6789)\n```"
    assert slow.tokenizer.encode(text) == fast.tokenizer.encode(text)
