"""Builds the sandbox image: offline from debootstrap (no registry here), or from a Dockerfile.

Both ways end in the same Dockerfile step that adds the supervisor, and the image carries
its hash as a label, so a changed supervisor is noticed and rebuilt instead of silently used.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

import docker
import docker.errors

from sandbox.errors import ImageError

IMAGE_REPOSITORY = "startbox-sandbox"

IMAGE_DIR = Path(__file__).parent / "image"
SUPERVISOR_PATH = "/opt/startbox/supervisor.py"
SUPERVISOR_COMMAND = ["python3", "-I", "-B", SUPERVISOR_PATH]
RUNNER_LABEL = "startbox.runner-sha"
DEBIAN_SUITE = "bookworm"
DEBIAN_PACKAGES = (
    "python3",
    "python3-numpy",
    "python3-sympy",
    "python3-mpmath",
    "python3-scipy",
    "python3-matplotlib",
    "python3-pandas",
    "python3-networkx",
)
# tagged by what goes in, so checkouts with different package lists or supervisors never fight
# over one tag (each rebuilding "its" image under the other's feet)
BASE_IMAGE = (
    f"startbox-sandbox-base:{DEBIAN_SUITE}-"
    + hashlib.sha256(" ".join(DEBIAN_PACKAGES).encode()).hexdigest()[:8]
)

Progress = Callable[[str], None]


def runner_sha() -> str:
    """A hash of everything that goes into the image: its directory and the base's packages."""
    digest = hashlib.sha256(BASE_IMAGE.encode())
    for path in sorted(
        p for p in IMAGE_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts
    ):
        digest.update(path.relative_to(IMAGE_DIR).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def default_tag() -> str:
    """The image tag of this checkout: its content hash, so a changed supervisor gets a new tag."""
    return f"{IMAGE_REPOSITORY}:{runner_sha()}"


def image_current(client: docker.DockerClient, tag: str) -> bool:
    try:
        image = client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return (image.labels or {}).get(RUNNER_LABEL) == runner_sha()


def require_image(client: docker.DockerClient, tag: str) -> None:
    """Fail with the fix named, rather than with Docker's 'No such image'."""
    if not image_current(client, tag):
        raise ImageError(
            f"sandbox image {tag} is missing or older than this checkout; "
            "build it with `startbox sandbox build-image`"
        )


def build_image(
    client: docker.DockerClient,
    tag: str,
    *,
    home: Path,
    dockerfile_base: str | None = None,
    force: bool = False,
    progress: Progress = print,
) -> bool:
    """Build `tag` unless it is current. Returns whether anything was built.

    Offline (default): debootstrap a minimal Debian with Python, numpy, sympy and mpmath, import
    it as a base image, then add the supervisor. With `dockerfile_base` (e.g. python:3.12-slim) the
    base comes from a registry and pip installs the libraries instead.
    """
    if not force and image_current(client, tag):
        progress(f"{tag} is up to date")
        return False
    if dockerfile_base:
        buildargs = {"BASE": dockerfile_base}
    else:
        ensure_debian_image(BASE_IMAGE, DEBIAN_PACKAGES, home=home, force=force, progress=progress)
        buildargs = {"BASE": BASE_IMAGE, "PIP_PACKAGES": ""}
    progress(f"adding the supervisor: docker build -t {tag}")
    try:
        client.images.build(
            path=str(IMAGE_DIR),
            tag=tag,
            buildargs=buildargs,
            labels={RUNNER_LABEL: runner_sha()},
            rm=True,
            forcerm=True,
        )
    except docker.errors.BuildError as exc:
        log = "".join(str(line.get("stream", line.get("error", ""))) for line in exc.build_log)
        raise ImageError(f"docker build failed:\n{log[-3000:]}") from exc
    progress(f"built {tag}")
    return True


def ensure_debian_image(
    tag: str,
    packages: Sequence[str],
    *,
    home: Path,
    force: bool = False,
    progress: Progress = print,
) -> bool:
    """A Debian image with `packages`, made without a registry: debootstrap, then docker import.
    Returns whether anything was built (also a base for other images: `startbox stack`)."""
    client = docker.from_env()
    try:
        client.images.get(tag)
        if not force:
            return False
    except docker.errors.ImageNotFound:
        pass
    rootfs = home / f"rootfs-{tag.replace(':', '-').replace('/', '-')}"
    debootstrap(rootfs, packages, progress=progress)
    progress(f"importing {rootfs} as {tag}")
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    try:
        assert tar.stdout is not None
        repository, _, version = tag.partition(":")
        client.api.import_image(src=tar.stdout, repository=repository, tag=version or "latest")
    finally:
        if tar.wait() != 0:
            raise ImageError(f"tar of {rootfs} failed with exit code {tar.returncode}")
    shutil.rmtree(rootfs)
    return True


def debootstrap(rootfs: Path, packages: Sequence[str], *, progress: Progress) -> None:
    if shutil.which("debootstrap") is None:
        raise ImageError(
            "debootstrap is not installed: `apt-get install debootstrap`, or build from a "
            "registry with `startbox sandbox build-image --dockerfile`"
        )
    if os.geteuid() != 0:
        raise ImageError("debootstrap needs root: run `sudo startbox sandbox build-image`")
    if rootfs.exists():
        shutil.rmtree(rootfs)
    rootfs.parent.mkdir(parents=True, exist_ok=True)
    command = [
        "debootstrap",
        "--variant=minbase",
        f"--include={','.join(packages)}",
        DEBIAN_SUITE,
        str(rootfs),
    ]
    progress("$ " + " ".join(command))
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    tail: list[str] = []
    for line in proc.stdout:
        tail = [*tail[-19:], line.rstrip()]
        progress(line.rstrip())
    if proc.wait() != 0:
        raise ImageError("debootstrap failed:\n" + "\n".join(tail))
    for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for item in (rootfs / cache).glob("*"):
            if item.is_file():
                item.unlink()
