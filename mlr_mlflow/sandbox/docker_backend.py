"""Docker: the worker in a container with no network, a read-only root, memory and pids limits.

No image is pulled. The image (`docker/sandbox/Dockerfile`, package data) is `FROM scratch` with an empty
directory skeleton, built locally through the docker SDK; the host's /usr, Python installation and
this package are mounted read-only at run time, so the container runs exactly the host's code. The
long-lived worker speaks the same stdin/stdout protocol as the other backends, through `docker run -i`.
"""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
import uuid
from functools import lru_cache
from pathlib import Path

from ..resources import dockerfile
from .bwrap_backend import (INNER_PACKAGE_PARENT, MAX_TASKS, NOBODY, SYSTEM_DIRS, TMP_BYTES,
                            python_prefixes)
from .subprocess_backend import BOOTSTRAP, PACKAGE_PARENT, SubprocessSandbox

IMAGE = "mlr-mlflow-sandbox:1"
SKELETON_DIRS = ("tmp", "proc", "dev", "sys", "etc", "usr", "opt/mlr/mlr_mlflow")


def _client():
    import docker

    return docker.from_env(timeout=20)


def _build_context() -> io.BytesIO:
    """Dockerfile plus a skeleton of empty directories and the host's /lib-style symlinks."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = dockerfile().read_bytes()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        for d in SKELETON_DIRS:
            info = tarfile.TarInfo(f"skeleton/{d}")
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755
            tar.addfile(info)
        for d in SYSTEM_DIRS:
            if os.path.islink(d):
                info = tarfile.TarInfo(f"skeleton{d}")
                info.type, info.linkname = tarfile.SYMTYPE, os.readlink(d)
                tar.addfile(info)
        for prefix in python_prefixes():
            info = tarfile.TarInfo(f"skeleton{prefix}")
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
            for parent in Path(prefix).parents:
                if str(parent) != "/":
                    info = tarfile.TarInfo(f"skeleton{parent}")
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
    buf.seek(0)
    return buf


def ensure_image(client=None) -> str:
    """Build the sandbox image from local material if it is not there yet."""
    import docker

    client = client or _client()
    try:
        client.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        client.images.build(fileobj=_build_context(), custom_context=True, tag=IMAGE, rm=True)
    return IMAGE


@lru_cache(maxsize=1)
def docker_available() -> bool:
    """A Docker daemon answers, the CLI is installed and the sandbox image exists or builds."""
    if shutil.which("docker") is None:
        return False
    try:
        client = _client()
        client.ping()
        ensure_image(client)
    except Exception:
        return False
    return True


class DockerSandbox(SubprocessSandbox):
    """`SubprocessSandbox` whose worker runs in a locked-down container."""

    name = "docker"

    def command(self) -> list[str]:
        self.container = f"mlr-sandbox-{uuid.uuid4().hex[:12]}"
        mounts = []
        for d in SYSTEM_DIRS:
            if os.path.isdir(d) and not os.path.islink(d):
                mounts += ["-v", f"{d}:{d}:ro"]
        for prefix in python_prefixes():
            mounts += ["-v", f"{prefix}:{prefix}:ro"]
        mounts += ["-v", f"{Path(PACKAGE_PARENT) / 'mlr_mlflow'}:{INNER_PACKAGE_PARENT}/mlr_mlflow:ro"]
        env = []
        for key, value in self._env().items():
            env += ["-e", f"{key}={value}"]
        memory = f"{self.config.memory_mb}m"
        return ["docker", "run", "-i", "--rm", "--name", self.container, "--network", "none",
                "--read-only", "--tmpfs", f"/tmp:rw,size={TMP_BYTES},mode=1777",
                "--memory", memory, "--memory-swap", memory, "--pids-limit", str(MAX_TASKS),
                "--ulimit", "core=0", "--ulimit", f"cpu={self.cpu_seconds}",
                "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
                "--user", f"{NOBODY}:{NOBODY}", "--workdir", "/tmp", *mounts, *env,
                IMAGE, sys.executable, "-I", "-c", BOOTSTRAP.format(parent=INNER_PACKAGE_PARENT)]

    def _env(self) -> dict[str, str]:
        from .subprocess_backend import scrubbed_env

        return {**scrubbed_env(self.config, "/tmp"), "HOME": "/tmp", "TMPDIR": "/tmp",
                "MPLCONFIGDIR": "/tmp"}

    def _kill(self) -> None:
        # Killing the `docker run` client does not stop the container: remove it by name.
        name = getattr(self, "container", None)
        if self._proc is not None and name:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)
        super()._kill()
