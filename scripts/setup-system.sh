#!/usr/bin/env bash
# Installs and starts the system parts startbox needs (Docker engine, Redis, debootstrap,
# docker-compose for the stack, and Chromium for the UI's browser test).
# Idempotent: a second run only checks. Debian/Ubuntu as root does it all; anywhere else it
# prints what to install and stops, because guessing another package manager is worse.
set -euo pipefail

STARTBOX_HOME="${STARTBOX_HOME:-$HOME/.cache/startbox}"
mkdir -p "$STARTBOX_HOME"

missing=()
# an engine that already answers will do; otherwise we need dockerd (a docker client alone,
# as some images ship, cannot run containers)
docker info >/dev/null 2>&1 || command -v dockerd >/dev/null || missing+=(docker.io)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v chromium >/dev/null || missing+=(chromium)
# compose.yaml's driver: Compose v2 where Docker's plugin is installed, else Debian's v1
docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null || missing+=(docker-compose)

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    echo "startbox needs these system packages: ${missing[*]}" >&2
    echo "Install them (Debian/Ubuntu: sudo apt-get install -y ${missing[*]}), start the Docker" >&2
    echo "engine (sudo systemctl start docker, or sudo dockerd &), then run make again." >&2
    exit 1
  fi
  echo "==> apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" tini >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "No Docker engine answers. Start one (sudo systemctl start docker) or add yourself" >&2
    echo "to the docker group, then run make again." >&2
    exit 1
  fi
  echo "==> starting dockerd (log: $STARTBOX_HOME/dockerd.log)"
  setsid nohup dockerd >"$STARTBOX_HOME/dockerd.log" 2>&1 </dev/null &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  if ! docker info >/dev/null 2>&1; then
    echo "dockerd did not answer within 60 s; its log ends with:" >&2
    tail -n 20 "$STARTBOX_HOME/dockerd.log" >&2
    exit 1
  fi
fi
echo "==> system ready: $(docker version --format 'Docker engine {{.Server.Version}}'), $(redis-server --version | cut -d' ' -f3)"
