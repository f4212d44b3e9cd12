"""Run hypothesis code elsewhere, isolated and bounded. Never imports the evaluator: callers hand
it a target function and a payload.

Backends, in the order "auto" tries them: "bwrap" (bubblewrap: namespaces, no network, read-only
minimal root), "namespace" (the same kernel isolation built from util-linux `unshare`/`setpriv`,
so it needs nothing installed on Linux), "docker" (a container with no network, read-only root,
memory and pids limits; it needs a daemon, so it comes after the two that need none), and
"subprocess" (rlimits and a scrubbed environment only: the fallback where the kernel forbids
namespaces, macOS for one). "auto" picks the first that works here, but never falls back to
"subprocess" on a machine whose kernel gives this user namespaces: there a backend that fails its
self-test is an error to fix (exit 2), and reduced isolation is only ever chosen by name
(`[sandbox] backend = "subprocess"`, `sandbox check --backend subprocess`).
"""
from __future__ import annotations

import sys

from ..config import SandboxConfig, UsageError
from .base import (Sandbox, SandboxCallError, SandboxCrash, SandboxError, SandboxOvertime,
                   SandboxTimeout)
from .bwrap_backend import BwrapSandbox, bwrap_available, bwrap_namespaces_allowed, bwrap_selftest
from .namespace_backend import NamespaceSandbox, namespace_available, namespace_selftest, namespaces_allowed
from .subprocess_backend import SubprocessSandbox

BACKENDS = ("auto", "bwrap", "namespace", "docker", "subprocess")
ISOLATION = {
    "bwrap": "no network, read-only private root, own pid namespace, no capabilities, 64 tasks",
    "namespace": "no network, read-only private root, own pid namespace, no capabilities, 64 tasks",
    "docker": "no network, read-only container root, no capabilities, 64 tasks",
    "subprocess": ("WARNING: reduced isolation: hypothesis code runs in a plain subprocess (rlimits, "
                   "scrubbed environment, static allow-list) that can still reach the network and "
                   "read your files; run `mlr-mlflow sandbox check` and see the README"),
}
_announced = False  # the backend line is printed once per process
_announce_to = None  # where it goes when the first sandbox starts (see announce_when_used)


def _docker():
    from .docker_backend import DockerSandbox, docker_available
    return DockerSandbox, docker_available


def available_backends() -> list[str]:
    """The backends that work on this machine, in the order "auto" tries them."""
    found = ["bwrap"] if bwrap_available() else []
    if namespace_available():
        found.append("namespace")
    if _docker()[1]():
        found.append("docker")
    return found + ["subprocess"]


def resolve_backend(name: str) -> str:
    if name not in BACKENDS:
        raise UsageError(f"unknown sandbox backend {name!r} (choose from {', '.join(BACKENDS)})")
    if name == "auto":
        if bwrap_available():
            return "bwrap"
        if namespace_available():
            return "namespace"
        if _docker()[1]():
            return "docker"
        _refuse_downgrade()
        return "subprocess"
    if name == "bwrap" and not bwrap_available():
        raise UsageError(f"sandbox backend 'bwrap' is not usable here: {bwrap_selftest()}")
    if name == "namespace" and not namespace_available():
        raise UsageError(f"sandbox backend 'namespace' is not usable here: {namespace_selftest()} (it needs "
                         "Linux, util-linux and a kernel that allows this user to create namespaces)")
    if name == "docker" and not _docker()[1]():
        raise UsageError("sandbox backend 'docker' is not usable here (no Docker daemon, or the "
                         "sandbox image cannot be built; see docker/README.md)")
    return name


def _refuse_downgrade() -> None:
    """"auto" found no isolating backend: where the kernel does give this user namespaces, that is
    a failure of ours to fix, not a reason to run generated code with the network and the user's
    files in reach."""
    if not (namespaces_allowed() or bwrap_namespaces_allowed()):
        return  # this machine offers no more than the plain subprocess (announced with a warning)
    raise UsageError(
        "sandbox: this machine allows namespace isolation but no isolating backend passed its "
        f"self-test (bwrap: {bwrap_selftest()}; namespace: {namespace_selftest()}); refusing to run "
        "generated code unisolated. Fix the cause (`mlr-mlflow sandbox check --backend namespace` "
        "shows it), or accept reduced isolation explicitly with [sandbox] backend = \"subprocess\" "
        "in the --config file")


def describe_backend(name: str) -> str:
    """One line: which backend runs hypothesis code and what it isolates."""
    return f"sandbox: {name} ({ISOLATION[name]})"


def announce_backend(config: SandboxConfig, emit=None) -> str:
    """Say once per process which backend runs hypothesis code (`emit`: default standard error)."""
    global _announced
    name = resolve_backend(config.backend)
    if not _announced:
        _announced = True
        (emit or (lambda line: print(line, file=sys.stderr, flush=True)))(describe_backend(name))
    return name


def announce_when_used(emit) -> None:
    """Say which backend runs hypothesis code (through `emit`) when the first sandbox starts, not
    before: a command that ends before running any code (an error, nothing to resume, a round
    already running) probes no backend and says nothing of one."""
    global _announce_to
    _announce_to = emit


def warm_sandbox(config: SandboxConfig) -> Sandbox:
    """`open_sandbox`, but its worker server is borrowed from (and given back to) this process's
    pool of warm servers: torch and lightning are imported once per process (see `pool`). The
    backend is resolved (and probed) only when the first call needs a server."""
    from .pool import WarmSandbox

    def create() -> Sandbox:
        announce_backend(config, _announce_to)
        return open_sandbox(config)

    return WarmSandbox(repr(config), config.backend, create)


def prewarm_sandboxes(config: SandboxConfig, count: int, target: str, payload) -> list:
    """Start `count` warm servers of this configuration in the background (see `pool.prewarm`),
    so that a call that trains on several side by side does not wait for their start-up."""
    from .pool import prewarm

    return prewarm(repr(config), lambda: open_sandbox(config), count, target, payload)


def open_sandbox(config: SandboxConfig) -> Sandbox:
    """The configured backend ("auto": the first that works here, see the module docstring)."""
    name = resolve_backend(config.backend)
    if name == "bwrap":
        return BwrapSandbox(config)
    if name == "namespace":
        return NamespaceSandbox(config)
    if name == "docker":
        return _docker()[0](config)
    # The plain subprocess must never go unnoticed: said once per process, through one channel only
    # (a logging warning beside the print showed it twice where logging has no handler).
    announce_backend(config, _announce_to)
    return SubprocessSandbox(config)


__all__ = ["Sandbox", "SandboxError", "SandboxTimeout", "SandboxOvertime", "SandboxCrash", "SandboxCallError",
           "SubprocessSandbox", "BwrapSandbox", "NamespaceSandbox", "open_sandbox", "warm_sandbox",
           "prewarm_sandboxes",
           "describe_backend", "announce_backend", "announce_when_used", "available_backends",
           "resolve_backend", "BACKENDS"]
