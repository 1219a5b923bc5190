"""Hint-RFT's trainer: supervised fine-tuning on loss-masked token data with TRL's SFTTrainer.

Why SFTTrainer: it takes pre-tokenized rows as they are (`labels`, or `assistant_masks` folded
into labels), handles padding, checkpoints, resume and seeding, and with a `peft_config` trains
a LoRA adapter, which is several times cheaper per step on a CPU than a full fine-tune. The
result is always a merged Hugging Face directory with the base's tokenizer and chat template,
so `startbox model serve --model DIR` serves it like any other model, plus a card that says how
it was made.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from transformers import TrainerCallback

CARD = "rft_card.json"


class TrainOptions(BaseModel):
    lora: bool = Field(True, description="Train a LoRA adapter (merged at the end).")
    lora_rank: int = Field(16, ge=1)
    epochs: float = Field(2.0, gt=0, description="Passes over the data (unless max_steps).")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many steps.")
    batch_size: int = Field(4, ge=1)
    grad_accum: int = Field(1, ge=1)
    learning_rate: float | None = Field(None, gt=0, description="Default: 2e-4 LoRA, 2e-5 full.")
    max_length: int = Field(1024, ge=16, description="Longer rows are cut at the end.")
    seed: int = 0
    save_steps: int = Field(10, ge=1, description="Checkpoint every N steps (for --resume).")
    device: str = Field("auto", description="auto: a GPU when torch sees one, else the CPU.")

    @property
    def lr(self) -> float:
        return self.learning_rate or (2e-4 if self.lora else 2e-5)


class LossPoint(BaseModel):
    step: int
    loss: float
    tokens_per_s: float


class TrainResult(BaseModel):
    model_dir: Path
    base: str
    data: Path
    data_hash: str
    steps: int
    seconds: float
    train_tokens: int  # tokens the steps processed (padding excluded)
    loss_curve: list[LossPoint]
    options: TrainOptions


Report = Callable[[int, int, LossPoint], None]  # step, total steps, the last point


def data_file(data: Path) -> Path:
    """The JSONL of `rft export --format tokens|trl`, given it or its directory."""
    if data.is_dir():
        for name in ("tokens.jsonl", "train.jsonl"):
            if (data / name).is_file():
                return data / name
        raise FileNotFoundError(f"no tokens.jsonl or train.jsonl in {data}: run `rft export`")
    if not data.is_file():
        raise FileNotFoundError(f"no training data at {data}: run `rft export --format tokens`")
    return data


def last_checkpoint(directory: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(directory)) if directory.is_dir() else None


def train(
    base: str,
    data: Path,
    out: Path,
    options: TrainOptions,
    resume: bool = False,
    report: Report | None = None,
) -> TrainResult:
    """Fine-tune `base` on `data`; writes out/checkpoints/*, out/model (merged) and its card."""
    import datasets
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback
    from transformers.utils import logging as hf_logging
    from trl import SFTConfig, SFTTrainer

    hf_logging.set_verbosity_error()
    datasets.disable_progress_bars()
    source = data_file(data)
    if not source.read_text(encoding="utf-8").strip():
        raise ValueError(f"{source} holds no rows: the filter kept nothing; collect more "
                         "(--samples) or loosen `rft filter`")  # fmt: skip
    rows = datasets.load_dataset("json", data_files=str(source), split="train")
    rows = rows.remove_columns([c for c in rows.column_names if c == "id"])
    if "input_ids" not in rows.column_names:
        raise ValueError(f"{source} has no input_ids: export it with --format tokens or trl")
    gpu = options.device != "cpu" and torch.cuda.is_available()
    if options.device == "gpu" and not gpu:
        raise RuntimeError("--device gpu, but torch sees no GPU (use --device cpu)")
    tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(
        base, local_files_only=True, dtype=torch.bfloat16 if gpu else torch.float32
    )
    checkpoints = out / "checkpoints"
    config = SFTConfig(
        output_dir=str(checkpoints),
        max_steps=options.max_steps or -1,
        num_train_epochs=options.epochs,
        per_device_train_batch_size=options.batch_size,
        gradient_accumulation_steps=options.grad_accum,
        learning_rate=options.lr,
        lr_scheduler_type="constant_with_warmup",
        warmup_steps=0,
        logging_steps=1,
        save_steps=options.save_steps,
        save_total_limit=2,
        seed=options.seed,
        data_seed=options.seed,
        max_length=options.max_length,
        use_cpu=not gpu,
        bf16=gpu,
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    peft = None
    if options.lora:
        rank = options.lora_rank
        peft = LoraConfig(
            r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules="all-linear",
            task_type="CAUSAL_LM",
        )  # fmt: skip
    curve: list[LossPoint] = []
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=rows,
        processing_class=tokenizer,
        peft_config=peft,
        callbacks=[_progress_callback(curve, report)],
    )
    trainer.remove_callback(PrinterCallback)  # our progress shows the loss; no raw log dicts
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=last_checkpoint(checkpoints) if resume else None)
    seconds = time.perf_counter() - started
    merged: Any = trainer.model
    if options.lora:
        merged = merged.merge_and_unload()  # the adapter folded in: a plain model to serve
    model_dir = out / "model"
    merged.save_pretrained(str(model_dir))
    tokenizer.save_pretrained(str(model_dir))  # with the chat template: vLLM and ChatTemplate
    result = TrainResult(
        model_dir=model_dir,
        base=base,
        data=source,
        data_hash=hashlib.sha256(source.read_bytes()).hexdigest(),
        steps=trainer.state.global_step,
        seconds=seconds,
        train_tokens=int(getattr(trainer, "_total_train_tokens", 0)),
        loss_curve=_curve(trainer.state.log_history, curve),
        options=options,
    )
    write_card(result)
    return result


def _curve(history: list[dict[str, float]], live: list[LossPoint]) -> list[LossPoint]:
    """Every logged step, those before a resume too (the checkpoint keeps the log history);
    tokens/s is known for the steps this process ran."""
    rates = {point.step: point.tokens_per_s for point in live}
    return [
        LossPoint(
            step=int(entry["step"]),
            loss=entry["loss"],
            tokens_per_s=rates.get(int(entry["step"]), 0.0),
        )
        for entry in history
        if "loss" in entry
    ]


def _progress_callback(curve: list[LossPoint], report: Report | None) -> TrainerCallback:
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        """Keeps the loss curve and reports loss and tokens/s after every logged step."""

        def __init__(self) -> None:
            self.started = time.perf_counter()

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.started = time.perf_counter()

        def on_log(
            self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None,
            **kwargs: Any,
        ) -> None:  # fmt: skip
            if not logs or "loss" not in logs:
                return
            elapsed = max(time.perf_counter() - self.started, 1e-9)
            rate = logs.get("num_tokens", 0.0) / elapsed  # tokens this process trained on
            point = LossPoint(step=state.global_step, loss=logs["loss"], tokens_per_s=rate)
            curve.append(point)
            if report is not None:
                report(state.global_step, state.max_steps, point)

    return Progress()


def write_card(result: TrainResult) -> None:
    """rft_card.json (the record) and README.md (the same, for people) beside the weights."""
    card = json.loads(result.model_dump_json())
    (result.model_dir / CARD).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    curve = "\n".join(
        f"| {p.step} | {p.loss:.4f} | {p.tokens_per_s:.0f} |" for p in result.loss_curve
    )
    options = "\n".join(f"- {k}: {v}" for k, v in result.options.model_dump().items())
    (result.model_dir / "README.md").write_text(
        f"# Hint-RFT model\n\nFine-tuned by `startbox rft train` from `{result.base}`.\n\n"
        f"- data: `{result.data}` (sha256 `{result.data_hash}`)\n- steps: {result.steps}, "
        f"{result.seconds:.0f} s, {result.train_tokens} tokens\n\n## Options\n\n{options}\n\n"
        f"## Loss curve\n\n| step | loss | tokens/s |\n| --- | --- | --- |\n{curve}\n",
        encoding="utf-8",
    )
