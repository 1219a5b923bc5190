"""Model-family profiles: markers, fences, hints, the early-stop text, detection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from model_host.host import profile_for
from model_host.profiles import (
    START_HINTS,
    Sampling,
    SamplingOverrides,
    detect_profile,
    get_profile,
)
from model_host.settings import ModelSettings

QWEN3_EARLY_STOP = (
    "\n\nConsidering the limited time by the user, I have to give the solution based on the "
    "thinking directly now.\n</think>\n\n"
)


def test_qwen3_has_the_exact_early_stop_text_and_thinking_sampling() -> None:
    profile = get_profile("qwen3")
    assert profile.early_stop_text == QWEN3_EARLY_STOP
    assert (profile.think_start, profile.think_end) == ("<think>", "</think>")
    assert (profile.sampling.temperature, profile.sampling.top_p) == (0.6, 0.95)
    assert profile.sampling.top_k == 20
    assert profile.reasoning_parser == "qwen3"


def test_deepseek_r1_is_an_alias_of_qwq() -> None:
    assert get_profile("deepseek-r1") == get_profile("qwq")
    assert get_profile("QwQ").reasoning_parser == "deepseek_r1"


def test_chatml_has_no_think_markers_and_does_not_close_one() -> None:
    profile = get_profile("chatml")
    assert profile.think_start is None and profile.think_end is None
    assert not profile.thinks
    assert "</think>" not in profile.early_stop_text
    assert profile.reasoning_parser is None


@pytest.mark.parametrize("name", ["qwen3", "qwq", "chatml"])
def test_every_family_shares_the_tir_fences_and_start_hints(name: str) -> None:
    profile = get_profile(name)
    assert profile.code_start == "```python\n"
    assert profile.code_end == "```"
    assert profile.output_start == "```output\n"
    assert profile.output_end == "```\n"
    assert profile.hints[0] == "Wait, maybe using Python here is a good idea."
    assert profile.hints == START_HINTS


def test_hint_text_opens_a_code_block_and_cycles() -> None:
    profile = get_profile("qwen3")
    assert profile.hint_text(0) == "Wait, maybe using Python here is a good idea.\n```python\n"
    assert profile.hint_text(len(profile.hints)) == profile.hint_text(0)


def test_output_block_wraps_output_in_the_output_fence() -> None:
    profile = get_profile("chatml")
    assert profile.output_block("42") == "\n```output\n42\n```\n"
    assert profile.output_block("a\nb\n") == "\n```output\na\nb\n```\n"
    assert profile.output_block("") == "\n```output\n```\n"


def test_get_profile_returns_a_copy() -> None:
    get_profile("qwen3").hints.append("mutated")
    assert "mutated" not in get_profile("qwen3").hints


def test_unknown_profile_names_the_choices() -> None:
    with pytest.raises(ValueError, match="qwen3"):
        get_profile("llama9")


def _model_dir(tmp_path: Path, name: str, model_type: str, template: str = "") -> Path:
    directory = tmp_path / name
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps({"model_type": model_type}))
    (directory / "tokenizer_config.json").write_text(json.dumps({"chat_template": template}))
    return directory


def test_detect_from_config_template_and_name(tmp_path: Path) -> None:
    assert detect_profile(str(_model_dir(tmp_path, "mine", "qwen3"))).name == "qwen3"
    assert detect_profile(str(_model_dir(tmp_path, "QwQ-32B", "qwen2"))).name == "qwq"
    thinking = _model_dir(tmp_path, "renamed", "llama", "{{ '<think>\\n' }}")
    assert detect_profile(str(thinking)).name == "qwq"
    plain = _model_dir(tmp_path, "smol", "llama", "{{ '<|im_start|>' }}")
    assert detect_profile(str(plain)).name == "chatml"


def test_detect_from_hub_ids() -> None:
    assert detect_profile("Qwen/Qwen3-8B").name == "qwen3"
    assert detect_profile("Qwen/QwQ-32B").name == "qwq"
    assert detect_profile("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B").name == "qwq"
    assert detect_profile("smollm2-135m").name == "chatml"


def test_sampling_request_fields_leave_unset_extras_to_the_server() -> None:
    fields = Sampling(temperature=0.6, top_p=0.95, top_k=20).request_fields()
    assert fields == {"temperature": 0.6, "top_p": 0.95, "top_k": 20}


def test_sampling_layers_override_in_order_and_keep_the_bounds() -> None:
    profile = get_profile("qwen3").sampling
    configured = SamplingOverrides(temperature=0.1, presence_penalty=0.5)
    run = SamplingOverrides(temperature=0.0, repetition_penalty=1.2)
    used = profile.overridden(configured, run)
    assert used == Sampling(temperature=0.0, top_p=0.95, top_k=20, min_p=0.0,
                            presence_penalty=0.5, repetition_penalty=1.2)  # fmt: skip
    assert profile.overridden() == profile == profile.overridden(SamplingOverrides())
    for bad in ({"temperature": -1}, {"top_p": 0}, {"top_p": 1.5}, {"min_p": 2},
                {"presence_penalty": 3}, {"repetition_penalty": 0}, {"top_k": -2},
                {"temperature": float("nan")}, {"tempreature": 0.5}):  # fmt: skip
        with pytest.raises(ValidationError):
            SamplingOverrides.model_validate(bad)


def test_the_configured_sampling_comes_from_the_environment_over_the_profile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STARTBOX_MODEL_SAMPLING__TEMPERATURE", "0")
    monkeypatch.setenv("STARTBOX_MODEL_SAMPLING__REPETITION_PENALTY", "1.1")
    settings = ModelSettings(profile="qwen3")
    assert settings.sampling == SamplingOverrides(temperature=0.0, repetition_penalty=1.1)
    sampling = profile_for(settings).sampling
    assert (sampling.temperature, sampling.top_k, sampling.repetition_penalty) == (0.0, 20, 1.1)
    monkeypatch.setenv("STARTBOX_MODEL_SAMPLING__TEMPERATURE", "-1")
    with pytest.raises(ValidationError, match=r"sampling\.temperature"):
        ModelSettings()
