"""Docker: the worker in a container with no network, a read-only root, memory and pids limits.

No image is pulled. The image (`docker/sandbox/Dockerfile`, package data) is `FROM scratch` with an empty
directory skeleton, built locally through the docker SDK; the host's /usr, Python installation and
this package are mounted read-only at run time, so the container runs exactly the host's code. The
long-lived worker speaks the same stdin/stdout protocol as the other backends, through `docker run -i`.
"""
from __future__ import annotations

import io
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import uuid
from functools import lru_cache
from pathlib import Path

from ..resources import dockerfile
from .bwrap_backend import INNER_PACKAGE_PARENT, NOBODY, SYSTEM_DIRS, TMP_BYTES, python_prefixes
from .identity import MAX_TASKS
from .probe_cache import kept
from .subprocess_backend import BOOTSTRAP, PACKAGE_PARENT, SubprocessSandbox, scrubbed_env

log = logging.getLogger(__name__)

IMAGE = "mlr-mlflow-sandbox:1"
SKELETON_DIRS = ("tmp", "proc", "dev", "sys", "etc", "usr", "opt/mlr/mlr_mlflow")


CLIENT_ENV = ("PATH", "HOME", "USER", "XDG_RUNTIME_DIR", "LANG")


def client_env() -> dict[str, str]:
    """The user's environment for the docker CLI itself: daemon address, context, TLS, config."""
    return {k: v for k, v in os.environ.items() if k in CLIENT_ENV or k.startswith("DOCKER_")}


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
@kept("docker_available", keep=bool)  # a daemon may be started within the day
def docker_available() -> bool:
    """A Docker daemon answers, the CLI is installed and the sandbox image exists or builds."""
    if shutil.which("docker") is None:
        return False
    try:
        client = _client()
        client.ping()
        ensure_image(client)
    except Exception as exc:
        log.info("sandbox: docker is installed but not usable: %s: %s", type(exc).__name__,
                    str(exc)[:300])
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
        # Values of the user's allow-list reach the container by name only (`-e NAME`, taken from
        # the docker client's environment), never on a command line that `ps` shows.
        env = []
        for key, value in self._container_env().items():
            env += ["-e", key if key in self.config.env_allow else f"{key}={value}"]
        memory = f"{self.config.memory_mb}m"
        memory_bytes = self.config.memory_mb << 20
        return ["docker", "run", "-i", "--rm", "--name", self.container, "--network", "none",
                "--read-only", "--tmpfs", f"/tmp:rw,size={TMP_BYTES},mode=1777",
                "--memory", memory, "--memory-swap", memory, "--pids-limit", str(MAX_TASKS),
                "--ulimit", "core=0", "--ulimit", f"cpu={self.cpu_seconds}",
                "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
                "--user", f"{NOBODY}:{NOBODY}", "--workdir", "/tmp", *mounts, *env,
                IMAGE, sys.executable, "-I", "-c",
                # the address-space limit of the other backends too (the cgroup limit is not
                # visible to, nor enforced on, every daemon: cgroup v1, rootless without delegation)
                f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({memory_bytes}, {memory_bytes})); "
                + BOOTSTRAP.format(parent=INNER_PACKAGE_PARENT)]

    def identity(self) -> tuple[None, None]:
        return None, None  # the container has its own user and pids limit

    def _container_env(self) -> dict[str, str]:
        return {**scrubbed_env(self.config, "/tmp"), "HOME": "/tmp", "TMPDIR": "/tmp",
                "MPLCONFIGDIR": "/tmp"}

    def environment(self, home: str) -> dict[str, str]:
        """The docker client keeps what finds the user's daemon (DOCKER_HOST, contexts in
        ~/.docker, rootless sockets under XDG_RUNTIME_DIR) and carries the allow-listed values."""
        return {**client_env(), **{k: os.environ[k] for k in self.config.env_allow if k in os.environ}}

    def _kill(self) -> None:
        # Killing the `docker run` client does not stop the container: remove it by name.
        name = getattr(self, "container", None)
        if self._proc is not None and name:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)
        super()._kill()
