"""Run hypothesis code elsewhere, isolated and bounded. Never imports the evaluator: callers hand
it a target function and a payload."""
from __future__ import annotations

from ..config import SandboxConfig
from .base import Sandbox, SandboxCallError, SandboxCrash, SandboxError, SandboxTimeout
from .subprocess_backend import SubprocessSandbox


def open_sandbox(config: SandboxConfig) -> Sandbox:
    """The backend named in the config."""
    if config.backend == "subprocess":
        return SubprocessSandbox(config)
    raise ValueError(f"unknown sandbox backend {config.backend!r} (available: subprocess)")


__all__ = ["Sandbox", "SandboxError", "SandboxTimeout", "SandboxCrash", "SandboxCallError",
           "SubprocessSandbox", "open_sandbox"]
