"""Fixtures shared across suites."""

from tests.model_host.fixtures import model_dir, model_settings, template, vllm_url

__all__ = ["model_dir", "model_settings", "template", "vllm_url"]
