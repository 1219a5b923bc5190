"""The model host as others use it: one call that returns a base URL that answers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx

from model_host.client import ModelUnavailable, server_root
from model_host.lock import async_file_lock
from model_host.prepare import prepare_model
from model_host.profiles import ModelProfile, detect_profile, get_profile
from model_host.server import (
    ServeError,
    VllmServer,
    build_plan,
    port_in_use,
    resolve_device,
    served_models,
)
from model_host.settings import ModelSettings

# Servers started here outlive the call (and this process); holding them keeps Python from
# warning that a running child was garbage-collected.
_detached: list[VllmServer] = []


def profile_for(settings: ModelSettings, model_dir: Path | str | None = None) -> ModelProfile:
    """The configured profile, else the one detected from the model, with the configured
    sampling over the profile's own."""
    if settings.profile:
        profile = get_profile(settings.profile)
    else:
        profile = detect_profile(str(model_dir or settings.model))
    profile.sampling = profile.sampling.overridden(settings.sampling)
    return profile


async def ensure_embedded_server(
    settings: ModelSettings, progress: Callable[[str], None] | None = None
) -> str:
    """A base URL serving `settings.served_model_name`.

    With `base_url` set, that server is used as is. Otherwise a vLLM already answering on the
    port is reused; if none answers, the model is prepared and vLLM is started detached (it
    outlives this process; `startbox model stop` ends it), logging to `settings.log_file`.
    """
    if settings.base_url:
        return server_root(settings.base_url)
    say = progress or (lambda _: None)
    url = settings.local_base_url
    name = settings.served_model_name
    lock = settings.home / "run" / f"vllm-{settings.port}.lock"
    async with async_file_lock(lock, timeout=settings.startup_timeout + 120):
        async with httpx.AsyncClient(base_url=url, timeout=5.0) as http:
            served = await served_models(http)
        if served:
            if name in served:
                return url
            raise ModelUnavailable(
                f"{url} serves {', '.join(served)}, not {name!r}. Stop that server, or pick "
                "another port (STARTBOX_MODEL_PORT) or served name (STARTBOX_MODEL_SERVED_NAME)."
            )
        if port_in_use(settings.host, settings.port):
            raise ModelUnavailable(
                f"port {settings.port} on {settings.host} is taken by something that is not an "
                "OpenAI-compatible server (or one still starting). Free it, or set "
                "STARTBOX_MODEL_PORT to a free port."
            )
        device = resolve_device(settings.device)
        say(f"preparing {settings.model}")
        model_dir = await asyncio.to_thread(prepare_model, settings.model, settings.home)
        server = VllmServer(
            build_plan(settings, model_dir, profile_for(settings, model_dir), device), settings.home
        )
        say(
            f"starting vLLM on {url} (log: {settings.log_file}); a first start compiles for a "
            "few minutes, later ones take about one"
        )
        server.start()
        try:
            await server.wait_ready(settings.startup_timeout, every(15.0, say))
        except ServeError as exc:
            server.stop()
            raise ModelUnavailable(str(exc)) from None
        _detached.append(server)
    return url


def every(interval: float, say: Callable[[str], None]) -> Callable[[float, str], None]:
    """An `on_wait` for `wait_ready`: a line each `interval` s with the elapsed time and what
    vLLM last logged, so a cold start is never silent (terminal or not)."""
    shown = 0.0

    def on_wait(waited: float, last_line: str) -> None:
        nonlocal shown
        if waited - shown >= interval:
            shown = waited
            say(f"vLLM still starting, {waited:.0f} s: {last_line[:120]}")

    return on_wait
