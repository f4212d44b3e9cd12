"""Run hypothesis code elsewhere, isolated and bounded. Never imports the evaluator: callers hand
it a target function and a payload.

Backends, strongest first: "bwrap" (namespaces, no network, read-only minimal root, nobody),
"docker" (a container with no network, read-only root, memory and pids limits), "subprocess"
(rlimits and a scrubbed environment only). "auto" picks the first that works here.
"""
from __future__ import annotations

import logging
import sys

from ..config import SandboxConfig, UsageError
from .base import Sandbox, SandboxCallError, SandboxCrash, SandboxError, SandboxTimeout
from .bwrap_backend import BwrapSandbox, bwrap_available
from .subprocess_backend import SubprocessSandbox

log = logging.getLogger(__name__)
BACKENDS = ("auto", "bwrap", "docker", "subprocess")
_warned = False


def _docker():
    from .docker_backend import DockerSandbox, docker_available
    return DockerSandbox, docker_available


def available_backends() -> list[str]:
    """The backends that work on this machine, strongest first."""
    found = ["bwrap"] if bwrap_available() else []
    if _docker()[1]():
        found.append("docker")
    return found + ["subprocess"]


def resolve_backend(name: str) -> str:
    if name not in BACKENDS:
        raise UsageError(f"unknown sandbox backend {name!r} (choose from {', '.join(BACKENDS)})")
    if name == "auto":
        return "bwrap" if bwrap_available() else ("docker" if _docker()[1]() else "subprocess")
    if name == "bwrap" and not bwrap_available():
        raise UsageError("sandbox backend 'bwrap' is not usable here (install bubblewrap: "
                         "apt-get install -y bubblewrap)")
    if name == "docker" and not _docker()[1]():
        raise UsageError("sandbox backend 'docker' is not usable here (no Docker daemon, or the "
                         "sandbox image cannot be built; see docker/README.md)")
    return name


def open_sandbox(config: SandboxConfig) -> Sandbox:
    """The configured backend ("auto": the strongest that works here)."""
    global _warned
    name = resolve_backend(config.backend)
    if name == "bwrap":
        return BwrapSandbox(config)
    if name == "docker":
        return _docker()[0](config)
    if not _warned:
        _warned = True
        message = ("WARNING: sandbox isolation is reduced: neither bubblewrap nor Docker is usable, "
                   "so hypothesis code runs in a plain subprocess (rlimits, scrubbed environment, "
                   "static allow-list) that can still reach the network and read your files.")
        log.warning(message)
        print(message, file=sys.stderr)
    return SubprocessSandbox(config)


__all__ = ["Sandbox", "SandboxError", "SandboxTimeout", "SandboxCrash", "SandboxCallError",
           "SubprocessSandbox", "BwrapSandbox", "open_sandbox", "available_backends",
           "resolve_backend", "BACKENDS"]
