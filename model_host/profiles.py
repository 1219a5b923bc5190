"""Model-family profiles: what the agent must know about a family's text conventions.

The agent renders prompts itself and talks raw `/v1/completions`, so markers, fences, the hint
library, the thinking-budget text and the recommended sampling live here, one profile per family.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

# each knob's bounds, shared by a profile's full `Sampling` and the optional overrides
Temperature = Annotated[float, Field(ge=0, description="Randomness; 0 is greedy.")]
TopP = Annotated[float, Field(gt=0, le=1, description="Nucleus: the top tokens of this mass.")]
TopK = Annotated[int, Field(ge=-1, description="The k likeliest tokens; -1 disables top-k.")]
MinP = Annotated[
    float, Field(ge=0, le=1, description="Drops tokens below this share of the likeliest.")
]
PresencePenalty = Annotated[
    float, Field(ge=-2, le=2, description="Penalises tokens already present (OpenAI's).")
]
RepetitionPenalty = Annotated[
    float, Field(gt=0, description="Divides repeated tokens' logits (>1 repeats less; vLLM's).")
]


class Sampling(BaseModel):
    """Sent with every request; top_k and min_p are extras that vLLM, SGLang and llama.cpp know."""

    temperature: Temperature = 0.6
    top_p: TopP = 0.95
    top_k: TopK = -1
    min_p: MinP | None = None
    presence_penalty: PresencePenalty | None = None
    repetition_penalty: RepetitionPenalty | None = None

    def request_fields(self) -> dict[str, float | int]:
        """The fields for a completions request body; unset extras are left to the server."""
        return self.model_dump(exclude_none=True)

    def overridden(self, *layers: SamplingOverrides) -> Sampling:
        """These values with each layer's set fields over them, the last layer winning: the
        profile's, then the configured default (ModelSettings.sampling), then the run's."""
        fields = self.model_dump()
        for layer in layers:
            fields.update(layer.model_dump(exclude_none=True))
        return Sampling.model_validate(fields)


class SamplingOverrides(BaseModel):
    """Sampling chosen by the operator or per run; None leaves the value below it."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    temperature: Temperature | None = None
    top_p: TopP | None = None
    top_k: TopK | None = None
    min_p: MinP | None = None
    presence_penalty: PresencePenalty | None = None
    repetition_penalty: RepetitionPenalty | None = None


# START's Hint-infer: inserted where the model would stop or conclude, each followed by the code
# fence so that the model continues by writing Python. The first is the paper's own example.
START_HINTS = [
    "Wait, maybe using Python here is a good idea.",
    "Wait, I can use Python to check if my approach is correct and refine it, if necessary.",
    "Alternatively, maybe using Python here is a good idea.",
    "Wait, let me verify the calculations with Python before going on.",
    "Hmm, maybe I should write some Python code to double-check this result.",
    "Wait, I should test this with Python on a few small cases first.",
]

_EARLY_STOP = (
    "\n\nConsidering the limited time by the user, I have to give the solution based on the "
    "thinking directly now.\n"
)


# Qwen3's soft switches: the last `/think` or `/no_think` in the user's text wins
SOFT_SWITCH = re.compile(r"(?<!\S)/(think|no_think)(?!\S)")


class ThinkingMode(BaseModel):
    """How one turn thinks: on or off, the template's kwargs, and why a request was moot."""

    enabled: bool | None = Field(description="None: the family has no thinking to switch.")
    template_kwargs: dict[str, bool] = Field(default_factory=dict)
    note: str | None = None


class ModelProfile(BaseModel):
    name: str
    think_start: str | None
    think_end: str | None
    code_start: str = "```python\n"
    code_end: str = "```"
    output_start: str = "```output\n"
    output_end: str = "```\n"
    hints: list[str] = Field(default_factory=lambda: list(START_HINTS))
    early_stop_text: str = Field(
        description="Appended when the thinking budget is spent: ends thinking, asks to answer."
    )
    sampling: Sampling
    reasoning_parser: str | None = Field(
        None, description="vLLM --reasoning-parser for this family (only used when asked)."
    )
    hybrid: bool = Field(
        False, description="Thinking can be switched off per turn (Qwen3's enable_thinking)."
    )

    @property
    def thinks(self) -> bool:
        return self.think_end is not None

    @property
    def no_think_prefill(self) -> str:
        """The empty thinking block a hybrid template opens the answer with when thinking is
        off; appended by hand when a template does not know `enable_thinking`."""
        return f"{self.think_start}\n\n{self.think_end}\n\n"

    def thinking_mode(self, requested: bool | None, text: str) -> ThinkingMode:
        """The turn's mode: `requested` if given, else the text's last soft switch, else on.
        Families without a switch think as they always do, and the note says so."""
        switches = SOFT_SWITCH.findall(text)
        wanted = (
            requested if requested is not None else (switches[-1] == "think" if switches else None)
        )
        if self.hybrid:
            enabled = True if wanted is None else wanted
            return ThinkingMode(enabled=enabled, template_kwargs={"enable_thinking": enabled})
        if not self.thinks:
            note = (
                None
                if wanted is None
                else (
                    f"thinking={str(wanted).lower()} changes nothing: the {self.name} profile "
                    "does not think"
                )
            )
            return ThinkingMode(enabled=None, note=note)
        note = (
            None
            if wanted in (None, True)
            else (f"thinking=false changes nothing: {self.name} models always think")
        )
        return ThinkingMode(enabled=True, note=note)

    def hint_text(self, index: int) -> str:
        """Hint `index` (cycling through the library) plus the opening code fence."""
        return f"{self.hints[index % len(self.hints)]}\n{self.code_start}"

    def output_block(self, output: str) -> str:
        """How a tool output is shown to the model, right after its closed code block."""
        body = output if output.endswith("\n") or not output else output + "\n"
        return f"\n{self.output_start}{body}{self.output_end}"


PROFILES: dict[str, ModelProfile] = {
    "qwen3": ModelProfile(
        name="qwen3",
        think_start="<think>",
        think_end="</think>",
        early_stop_text=_EARLY_STOP + "</think>\n\n",
        sampling=Sampling(temperature=0.6, top_p=0.95, top_k=20, min_p=0.0),
        reasoning_parser="qwen3",
        hybrid=True,
    ),
    "qwq": ModelProfile(
        name="qwq",
        think_start="<think>",
        think_end="</think>",
        early_stop_text=_EARLY_STOP + "</think>\n\n",
        sampling=Sampling(temperature=0.6, top_p=0.95, top_k=40, min_p=0.0),
        reasoning_parser="deepseek_r1",
    ),
    "chatml": ModelProfile(
        name="chatml",
        think_start=None,
        think_end=None,
        early_stop_text=_EARLY_STOP + "\n",
        sampling=Sampling(temperature=0.2, top_p=0.9, top_k=-1),
    ),
}
ALIASES = {"deepseek-r1": "qwq", "deepseek_r1": "qwq", "smollm2": "chatml", "qwen2.5": "chatml"}


def get_profile(name: str) -> ModelProfile:
    key = ALIASES.get(name.lower(), name.lower())
    if key not in PROFILES:
        known = ", ".join([*PROFILES, *ALIASES])
        raise ValueError(f"unknown model profile {name!r}; pick one of: {known}")
    return PROFILES[key].model_copy(deep=True)


def detect_profile(model_dir_or_id: str) -> ModelProfile:
    """Pick the family from the model's config and chat template, else from its name."""
    path = Path(model_dir_or_id).expanduser()
    model_type = ""
    template = ""
    if path.is_dir():
        config = path / "config.json"
        if config.is_file():
            model_type = str(json.loads(config.read_text()).get("model_type", ""))
        template = _chat_template_text(path)
    name = (path.name if path.is_dir() else model_dir_or_id).lower()
    if model_type.startswith("qwen3") or "qwen3" in name:
        return get_profile("qwen3")
    if "qwq" in name or ("deepseek" in name and "r1" in name):
        return get_profile("qwq")
    if "<think>" in template:  # an unknown thinking model: R1-style markers are the common case
        return get_profile("qwq")
    return get_profile("chatml")


def _chat_template_text(model_dir: Path) -> str:
    jinja = model_dir / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text()
    config = model_dir / "tokenizer_config.json"
    if config.is_file():
        template = json.loads(config.read_text()).get("chat_template") or ""
        return template if isinstance(template, str) else json.dumps(template)
    return ""
