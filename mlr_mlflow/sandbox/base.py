"""The seam between trusted code and code that runs hypotheses.

A sandbox runs `target` (a "module:function" of this package) on a payload in another, bounded
process and returns the function's JSON-compatible result. The parent sends pickles (trusted to
untrusted) and reads back JSON only, so a compromised worker cannot execute code in the parent.
"""
from __future__ import annotations

from typing import Any, Protocol


class SandboxError(RuntimeError):
    """The sandboxed call did not produce a result. `reason` is meant for people."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class SandboxTimeout(SandboxError):
    pass


class SandboxOvertime(SandboxTimeout):
    """A deadline the target posted (`alarm`) ran out in a call that no signal interrupted, so the
    worker server killed the call. `reason` names the limit; `culprit` is what the target said it
    was running (e.g. the training job's model keys), or None. The server itself serves on."""

    def __init__(self, reason: str, culprit: list | None = None):
        super().__init__(reason)
        self.culprit = culprit


class SandboxCrash(SandboxError):
    """The worker process died (a resource limit, a signal, a hard crash)."""


class SandboxCallError(SandboxError):
    """The target raised: typically the hypothesis code raised during a probe or training."""


class Sandbox(Protocol):
    """One method to run work elsewhere; `close` ends any long-lived worker."""

    name: str

    def call(self, target: str, payload: Any, timeout: float, limit: str | None = None) -> Any:
        """`limit` names the setting behind `timeout` in the message of a `SandboxTimeout`."""

    def close(self) -> None: ...

    def stop(self) -> None:
        """`close` for good: no worker is started again (a later call raises)."""

    def __enter__(self) -> "Sandbox": ...

    def __exit__(self, *exc) -> None: ...
