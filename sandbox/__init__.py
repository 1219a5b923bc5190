"""Runs model-written Python in hardened, warm Docker containers with stateful sessions."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("startbox")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"

IMAGE_REPOSITORY = "startbox-sandbox"
