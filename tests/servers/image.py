"""The project's container image, built with buildah for the smoke tests, and containers of it.

No Docker engine runs here (test-services.md): buildah builds the Dockerfile and runs containers
without one (`STORAGE_DRIVER=vfs BUILDAH_ISOLATION=chroot`, host network, so a container reaches
the servers the test session starts on loopback). `FROM python:3.11-slim` resolves to the
stand-in base `.ci/setup/image.sh` builds from Debian packages.

Sources, in order: `SENSE_TEST_IMAGE` (an image already in buildah's storage, kept), else an
image built once per session from the working tree (removed at the end); without buildah the
tests are skipped with that reason.

The build machine reaches PyPI through a CA only it trusts: its CA bundle and a pip.conf naming
it are mounted into the RUN steps only, never into the image.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers._process import REPO_ROOT

BASE_IMAGE = "localhost/python:3.11-slim"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
BUILD_TIMEOUT_S = 600
RUN_TIMEOUT_S = 120
ENV = {"STORAGE_DRIVER": "vfs", "BUILDAH_ISOLATION": "chroot"}
#: What buildah itself adds to stderr after a command that exits non-zero.
_BUILDAH_EXIT = re.compile(r"^(subprocess exited with status \d+|Error: exit status \d+)\n", re.M)


def buildah(*args: str, timeout: float = RUN_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    """Run buildah with the storage settings that work without a Docker engine."""
    return subprocess.run(
        ["buildah", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **ENV},
    )


def _checked(result: subprocess.CompletedProcess[str], what: str) -> str:
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed ({result.returncode}): {result.stderr[-3000:]}")
    return result.stdout.strip()


@dataclass(frozen=True)
class Image:
    """A built image: its name, size and how long its build took (0 when given)."""

    name: str
    size: str
    build_s: float


def build(folder: Path, tag: str) -> Image:
    """`buildah bud` the Dockerfile of the working tree, with the build-time CA glue."""
    if not _checked(buildah("images", "--quiet", "--noheading", BASE_IMAGE), "buildah images"):
        raise RuntimeError(f"no stand-in base {BASE_IMAGE}: run .ci/setup/image.sh first")
    mounts: list[str] = []
    if CA_BUNDLE.is_file():
        pip_conf = folder / "pip.conf"
        pip_conf.write_text(f"[global]\ncert = {CA_BUNDLE}\n")
        mounts += ["-v", f"{CA_BUNDLE}:{CA_BUNDLE}:ro", "-v", f"{pip_conf}:/etc/pip.conf:ro"]
    started = time.monotonic()
    _checked(
        buildah(
            "bud",
            "--quiet",
            "--pull=never",
            "--layers=false",
            *mounts,
            "-t",
            tag,
            str(REPO_ROOT),
            timeout=BUILD_TIMEOUT_S,
        ),
        "buildah bud",
    )
    took = time.monotonic() - started
    return Image(tag, _size(tag), took)


def _size(name: str) -> str:
    return _checked(buildah("images", "--format", "{{.Size}}", name), "buildah images")


class Container:
    """A working container of the image; `run` runs one command in it (host network)."""

    def __init__(self, name: str, root: Path | None) -> None:
        self.name = name
        self.root = root

    def run(
        self,
        *command: str,
        user: str | None = None,
        env: dict[str, str] | None = None,
        volumes: Sequence[tuple[Path, str]] = (),
        tmpfs: Sequence[str] = (),
    ) -> subprocess.CompletedProcess[str]:
        """The command's exit code and output; `volumes` are (host file, path) mounted read-only."""
        flags = [*(["--user", user] if user else []), "--network", "host"]
        flags += [f"--env={key}={value}" for key, value in (env or {}).items()]
        flags += [f"--volume={host}:{path}:ro" for host, path in volumes]
        flags += [f"--mount=type=tmpfs,destination={path}" for path in tmpfs]
        result = buildah("run", *flags, self.name, "--", *command)
        result.stderr = _BUILDAH_EXIT.sub("", result.stderr)
        return result


@contextmanager
def container(
    image: str, *, read_only: bool = False, mount_points: Sequence[str] = ()
) -> Iterator[Container]:
    """A container of `image`, removed afterwards.

    `read_only`: its root filesystem is mounted read-only, as `readOnlyRootFilesystem: true`
    makes it in the Job; buildah's own /run/.containerenv lives on a root-owned tmpfs (not
    writable by the Job's uid), and the caller mounts a tmpfs where the pod has its emptyDir.
    The files later mounted into it (`mount_points`) are created first, as a container runtime
    does before it makes the root read-only.
    """
    name = _checked(
        buildah(
            "from", "--pull=never", "--name", f"sense-preflight-test-{uuid.uuid4().hex[:8]}", image
        ),
        "buildah from",
    )
    with ExitStack() as undo:
        undo.callback(buildah, "rm", name)
        root = None
        if read_only:
            root = Path(_checked(buildah("mount", name), "buildah mount"))
            undo.callback(buildah, "umount", name)
            for point in mount_points:
                target = root / point.lstrip("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.touch()
            _mount("--bind", str(root), str(root))
            undo.callback(_umount, root)
            _mount("-o", "remount,bind,ro", str(root))
            _mount("-t", "tmpfs", "-o", "mode=0755,size=1m", "tmpfs", str(root / "run"))
            undo.callback(_umount, root / "run")
        yield Container(name, root)


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, timeout=30)


def _umount(path: Path) -> None:
    subprocess.run(["umount", str(path)], capture_output=True, timeout=30)


def containers() -> list[str]:
    """The names of buildah's working containers that the tests created."""
    listed = _checked(buildah("containers", "--format", "{{.ContainerName}}"), "buildah containers")
    return [name for name in listed.split() if name.startswith("sense-preflight-test-")]


@pytest.fixture(scope="session")
def preflight_image(session_dir: Path) -> Iterator[Image]:
    """The image of the working tree (or `SENSE_TEST_IMAGE`), built once per session."""
    given = os.environ.get("SENSE_TEST_IMAGE")
    if shutil.which("buildah") is None:
        pytest.skip("buildah is not installed (.ci/setup/image.sh installs it)")
    if given:
        yield Image(given, _size(given), 0.0)
        return
    tag = f"localhost/sense-preflight:test-{uuid.uuid4().hex[:8]}"
    folder = session_dir / "image"
    folder.mkdir()
    image = build(folder, tag)
    try:
        yield image
    finally:
        buildah("rmi", "--force", tag)
