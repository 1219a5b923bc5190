"""`rft export`: kept trajectories as training data, with loss masks at span level.

Trained: the model's own text and code (and hints kept by `rft filter --hints keep`), and the
end-of-turn token that teaches it to stop. Never trained: the prompt, tool output, tool errors,
masked hints, the budget's forced text. Each run of same-mask segments is tokenized on its
own, so no token straddles a trained and an untrained span: the trained tokens decode exactly
to the trained text.

Formats: `tokens` (JSONL input_ids + labels, -100 where there is no loss), `trl` (JSONL
input_ids + assistant_masks, which TRL's SFTTrainer folds into labels), `llamafactory`
(sharegpt with observation turns) and `verl` (multi-turn parquet of messages).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from agent.segments import AUTHORED, Segment
from workflows.rft.trajectory import Trajectory

Format = Literal["tokens", "trl", "llamafactory", "verl"]
IGNORE = -100
FILES: dict[str, str] = {
    "tokens": "tokens.jsonl",
    "trl": "train.jsonl",
    "llamafactory": "train.json",
    "verl": "train.parquet",
}

Encode = Callable[[str], list[int]]


class Span(BaseModel):
    text: str
    trained: bool


def spans(t: Trajectory, end_of_turn: str) -> list[Span]:
    """Prompt, segments and the end of turn, as maximal runs of one mask."""
    out: list[Span] = [Span(text=t.prompt, trained=False)]
    pieces = [(s["text"], s["kind"] in AUTHORED) for s in t.segments] + [(end_of_turn, True)]
    for text, trained in pieces:
        if not text:
            continue
        if out[-1].trained == trained:
            out[-1] = Span(text=out[-1].text + text, trained=trained)
        else:
            out.append(Span(text=text, trained=trained))
    return out


def tokenize(parts: list[Span], encode: Encode) -> tuple[list[int], list[int]]:
    """input_ids and labels (-100 on untrained tokens)."""
    ids: list[int] = []
    labels: list[int] = []
    for span in parts:
        piece = encode(span.text)
        ids += piece
        labels += piece if span.trained else [IGNORE] * len(piece)
    return ids, labels


def messages(t: Trajectory) -> list[dict[str, str]]:
    """The turn as chat messages: the model's text as assistant turns, everything it did not
    write (tool output, masked hints, forced text) as tool turns that carry no loss."""
    turns: list[dict[str, str]] = [{"role": "user", "content": t.question}]
    for segment in t.segments:
        role = "assistant" if segment["kind"] in AUTHORED else "tool"
        if turns[-1]["role"] == role:
            turns[-1] = {"role": role, "content": turns[-1]["content"] + segment["text"]}
        else:
            turns.append({"role": role, "content": segment["text"]})
    return turns


SHAREGPT_ROLES = {"user": "human", "assistant": "gpt", "tool": "observation"}


class ExportReport(BaseModel):
    format: Format
    path: Path
    rows: int
    tokens: int  # all tokens (tokens/trl), else 0
    trained_tokens: int
    data_hash: str  # sha256 of the written file: the model card names it


def export(
    trajectories: Iterable[Trajectory],
    fmt: Format,
    out: Path,
    encode: Encode | None = None,
    end_of_turn: str = "",
) -> ExportReport:
    """Write the data file into directory `out`; `encode` and `end_of_turn` (the tokenizer's
    EOS text) are needed for the token formats."""
    rows = list(trajectories)
    out.mkdir(parents=True, exist_ok=True)
    path = out / FILES[fmt]
    total = trained = 0
    if fmt in ("tokens", "trl"):
        if encode is None:
            raise ValueError(f"--format {fmt} needs the base model's tokenizer (--base)")
        records: list[dict[str, Any]] = []
        for t in rows:
            ids, labels = tokenize(spans(t, end_of_turn), encode)
            total += len(ids)
            trained += sum(label != IGNORE for label in labels)
            record: dict[str, Any] = {"id": f"{t.problem_id}#{t.sample}", "input_ids": ids}
            if fmt == "tokens":
                record["labels"] = labels
            else:
                record["assistant_masks"] = [int(label != IGNORE) for label in labels]
            records.append(record)
        _write_jsonl(path, records)
    elif fmt == "llamafactory":
        data = [
            {
                "conversations": [
                    {"from": SHAREGPT_ROLES[m["role"]], "value": m["content"]} for m in messages(t)
                ]
            }
            for t in rows
        ]
        path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        (out / "dataset_info.json").write_text(
            json.dumps(
                {
                    "startbox_rft": {
                        "file_name": path.name,
                        "formatting": "sharegpt",
                        "columns": {"messages": "conversations"},
                        "tags": {
                            "role_tag": "from",
                            "content_tag": "value",
                            "user_tag": "human",
                            "assistant_tag": "gpt",
                            "observation_tag": "observation",
                        },
                    }
                },
                indent=1,
            )
            + "\n",
            encoding="utf-8",
        )
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(
            [
                {"messages": messages(t), "extra_info": {"id": t.problem_id, "sample": t.sample}}
                for t in rows
            ]
        )
        pq.write_table(table, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return ExportReport(format=fmt, path=path, rows=len(rows), tokens=total,
                        trained_tokens=trained, data_hash=digest)  # fmt: skip


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as lines:
        for record in records:
            lines.write(json.dumps(record) + "\n")


def trained_text(segments: list[Segment], end_of_turn: str) -> str:
    """What the loss covers, as text: what the round-trip test compares decoded tokens with."""
    return "".join(s["text"] for s in segments if s["kind"] in AUTHORED) + end_of_turn
