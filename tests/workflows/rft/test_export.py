"""`rft export` with the embedded model's tokenizer: trained tokens decode exactly to the
trained spans, every format loads with `datasets`, and TRL's trainer takes the token files."""

from __future__ import annotations

from pathlib import Path

import datasets
import pytest

from model_host.template import ChatTemplate
from tests.workflows.rft.helpers import hinted, seg
from workflows.rft.export import FILES, IGNORE, export, spans, tokenize, trained_text
from workflows.rft.filter import apply_hints
from workflows.rft.trajectory import Trajectory


def _cases() -> list[Trajectory]:
    """Spans that end mid-word and mid-number, so a joint tokenization would straddle them."""
    glued = hinted(segments=[
        seg("model", "Let me compute"), seg("hint", "ing.\n```python\n"),
        seg("code", "print(12"), seg("tool_error", "34)\n```output\nSyntaxErr"),
        seg("code", "or\n```"), seg("forced", " ok"), seg("model", "ay \\boxed{7006652}"),
    ])  # fmt: skip
    return [hinted(), glued, hinted(segments=apply_hints(hinted().segments, "drop"))]


def test_trained_tokens_decode_exactly_to_the_trained_spans(template: ChatTemplate) -> None:
    tokenizer = template.tokenizer
    eos = tokenizer.eos_token

    def encode(text: str) -> list[int]:
        return tokenizer.encode(text, add_special_tokens=False)

    for case in _cases():
        ids, labels = tokenize(spans(case, eos), encode)
        trained = [token for token, label in zip(ids, labels, strict=True) if label != IGNORE]
        assert tokenizer.decode(trained) == trained_text(case.segments, eos)
        untrained = [token for token, label in zip(ids, labels, strict=True) if label == IGNORE]
        assert str(tokenizer.decode(untrained)).startswith(
            case.prompt
        )  # the prompt is never trained
        whole = case.prompt + "".join(s["text"] for s in case.segments) + eos
        assert tokenizer.decode(ids) == whole
        assert labels[-1] == ids[-1] == tokenizer.eos_token_id  # it learns to stop


@pytest.fixture(scope="module")
def exported(template: ChatTemplate, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export")
    tokenizer = template.tokenizer

    def encode(text: str) -> list[int]:
        return tokenizer.encode(text, add_special_tokens=False)

    for fmt in FILES:
        export(_cases(), fmt, out / fmt, encode, tokenizer.eos_token)  # type: ignore[arg-type]
    return out


def test_every_format_loads_with_datasets(exported: Path) -> None:
    tokens = datasets.load_dataset("json", data_files=str(exported / "tokens/tokens.jsonl"))
    assert set(tokens["train"].column_names) == {"id", "input_ids", "labels"}
    trl = datasets.load_dataset("json", data_files=str(exported / "trl/train.jsonl"))["train"]
    assert set(trl.column_names) == {"id", "input_ids", "assistant_masks"}
    sharegpt = datasets.load_dataset("json", data_files=str(exported / "llamafactory/train.json"))
    turns = sharegpt["train"][0]["conversations"]
    assert [t["from"] for t in turns] == ["human", "gpt", "observation", "gpt", "observation",
                                          "gpt"]  # fmt: skip
    assert turns[3]["value"] == "print(1234 * 5678)\n```"
    verl = datasets.load_dataset("parquet", data_files=str(exported / "verl/train.parquet"))
    roles = [m["role"] for m in verl["train"][1]["messages"]]
    assert roles == ["user", "assistant", "tool", "assistant", "tool", "assistant", "tool",
                     "assistant"]  # fmt: skip


def test_trl_builds_labels_from_both_token_files(
    exported: Path, model_dir: Path, tmp_path: Path
) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir))
    expected = datasets.load_dataset(
        "json", data_files=str(exported / "tokens/tokens.jsonl"), split="train"
    )["labels"]
    for name in ("tokens/tokens.jsonl", "trl/train.jsonl"):
        rows = datasets.load_dataset("json", data_files=str(exported / name), split="train")
        trainer = SFTTrainer(
            model=model,
            args=SFTConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none", max_steps=1),
            train_dataset=rows.remove_columns(["id"]),
            processing_class=tokenizer,
        )
        assert trainer.train_dataset["labels"] == expected
