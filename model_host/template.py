"""The model's own chat template, rendered locally so prompts can be continued token-exactly."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")


class ChatTemplate:
    """Renders messages with the tokenizer's chat template and counts tokens with it."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self.tokenizer = tokenizer

    @classmethod
    def load(cls, model_dir: str) -> ChatTemplate:
        """From a model directory (or a hub id already in the local cache); never downloads."""
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        path = Path(model_dir).expanduser()
        hint = "point it at a model directory (`startbox model prepare` prints the embedded one)"
        if path.is_dir() and not any((path / name).is_file() for name in TOKENIZER_FILES):
            raise ValueError(f"no tokenizer in {path}: {hint}")
        try:
            tokenizer = _tokenizer_class(path).from_pretrained(
                str(path) if path.is_dir() else model_dir, local_files_only=True
            )
        except (OSError, ValueError) as exc:
            raise ValueError(f"no usable tokenizer for {model_dir!r} ({exc}): {hint}") from exc
        if not tokenizer.chat_template:
            raise ValueError(f"{model_dir} has a tokenizer but no chat template")
        return cls(tokenizer)

    def render(
        self,
        messages: list[dict[str, str]],
        *,
        add_generation_prompt: bool = True,
        **template_kwargs: Any,
    ) -> str:
        """The prompt text; extra kwargs reach the template (e.g. enable_thinking for Qwen3;
        a template that does not use a kwarg ignores it)."""
        text = self.tokenizer.apply_chat_template(
            messages,
            tokenize=False,
            add_generation_prompt=add_generation_prompt,
            **template_kwargs,
        )
        return str(text)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))


def _tokenizer_class(path: Path) -> Any:
    """A directory's tokenizer.json goes straight into the fast class AutoTokenizer would pick:
    AutoTokenizer (its import already) goes through transformers' model registry, which imports
    torch: 7 s of every API's, worker's and CLI run's start here against 2 s this way."""
    if (path / "tokenizer.json").is_file():
        from transformers import PreTrainedTokenizerFast

        return PreTrainedTokenizerFast
    from transformers import AutoTokenizer

    return AutoTokenizer
