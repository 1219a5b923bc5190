"""Agent configuration: every field has an env twin `STARTBOX_AGENT_<NAME>`."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from agent.kinds import KINDS, ProblemKind
from model_host.profiles import SamplingOverrides


class RunDefaults(BaseModel):
    """The run options whose defaults the agent's settings hold."""

    thinking_budget: int = Field(4096, ge=0, description="Thinking tokens across all rounds.")
    answer_budget: int = Field(1024, ge=1, description="Answer tokens after the thinking ends.")
    max_tool_calls: int = Field(6, ge=0, description="Code executions at most per run.")
    min_tool_calls: int = Field(0, ge=0, description="Hint until this many calls were made.")
    hint_rounds: int = Field(0, ge=0, description="Extra hints where the model would stop.")
    hint_word_probability: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Chance to insert a hint where the model writes Wait/Alternatively.",
    )
    hint_at_start: bool = Field(
        False,
        description="Open the turn with a hint (Hint-RFT collection from models whose "
        "thinking rarely ends within the budget).",
    )
    lead_answer: bool = Field(
        False,
        description="Open a budget-forced answer the kind's way (`The final answer is \\boxed{` "
        "for math), so a small model states it where the judge reads it.",
    )
    seed: int | None = Field(None, description="Makes hint choice and sampling reproducible.")
    kind: ProblemKind = Field(
        "math", description="; ".join(f"{k.name}: {k.summary}" for k in KINDS.values())
    )
    timeout: float = Field(600.0, gt=0, description="Wall-clock seconds for the whole run.")
    code_timeout: float = Field(10.0, gt=0, description="Seconds per code execution.")


class RunOptions(RunDefaults):
    """What may change from one run to the next (the API and batch jobs send these)."""

    sampling: SamplingOverrides = Field(
        default_factory=SamplingOverrides,
        description="This run's sampling over the configured default (STARTBOX_MODEL_SAMPLING) "
        "and the model profile's; a run records here the sampling it used.",
    )


class AgentSettings(BaseSettings, RunDefaults):
    """Defaults for every run (RunDefaults' fields) plus what only the operator sets; the
    sampling default is the model's (ModelSettings.sampling), so it is not repeated here."""

    model_config = SettingsConfigDict(
        env_prefix="STARTBOX_AGENT_", extra="forbid", populate_by_name=True
    )

    round_tokens: int = Field(1024, ge=16, description="Tokens per model call at most.")
    context_length: int = Field(8192, ge=512, description="The model's context window.")
    context_margin: int = Field(64, ge=0, description="Tokens kept free below the window.")
    max_question_chars: int = Field(32_000, ge=1, description="Longest question accepted.")
    persist: bool = Field(True, description="Keep runs in the SQLite store.")
    kernel_ttl: float = Field(
        1200.0, gt=0, description="Seconds a thread's idle kernel lives; then replayed on use."
    )
    max_kernels: int = Field(
        4, ge=1, description="Open thread kernels per tenant; the least recently used goes."
    )
    store_path: Path | None = Field(None, description="SQLite file; default STARTBOX_HOME/runs.db.")
    home: Path = Field(
        Path.home() / ".cache" / "startbox",
        validation_alias="STARTBOX_HOME",  # the plain name would also match $HOME
    )

    def run_options(self, **overrides: object) -> RunOptions:
        """These settings as per-run options, with any non-None overrides applied."""
        base = self.model_dump(include=set(RunDefaults.model_fields))
        base.update({k: v for k, v in overrides.items() if v is not None})
        return RunOptions(**base)

    @property
    def database(self) -> Path:
        return self.store_path or self.home / "runs.db"

    @property
    def checkpoints(self) -> Path:
        """LangGraph's checkpoints, in a file of their own beside the run store."""
        return self.database.with_name(f"{self.database.stem}-checkpoints.db")
