"""Validation: static checks, then probes in a sandbox. Every rejection carries a readable reason."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..config import SandboxConfig
from ..hypothesis import Hypothesis
from ..kinds import get_kind
from ..sandbox import Sandbox, SandboxError, open_sandbox
from .dynamic import PROBE_TARGET
from .static import check_static


@dataclass(frozen=True)
class ValidationResult:
    """Attributes: valid; reasons (empty when valid); stage where it failed ("static"/"dynamic")."""

    valid: bool
    reasons: list[str] = field(default_factory=list)
    stage: str | None = None

    def to_dict(self) -> dict:
        return {"valid": self.valid, "reasons": list(self.reasons), "stage": self.stage}


def validate(hypothesis: Hypothesis, sandbox: Sandbox | None = None,
             config: SandboxConfig | None = None) -> ValidationResult:
    """Static checks first; only a statically clean hypothesis is ever executed, and only in `sandbox`."""
    config = config or SandboxConfig()
    reasons = check_static(hypothesis.source, get_kind(hypothesis.kind))
    if reasons:
        return ValidationResult(False, reasons, "static")
    own = sandbox is None
    sandbox = sandbox or open_sandbox(config)
    try:
        answer = sandbox.call(PROBE_TARGET, {"source": hypothesis.source, "kind": hypothesis.kind},
                              timeout=config.probe_timeout_s)
        reasons = list(answer["reasons"])
    except SandboxError as exc:
        reasons = [f"probe failed: {exc.reason}"]
    finally:
        if own:
            sandbox.close()
    return ValidationResult(not reasons, reasons, "dynamic" if reasons else None)


__all__ = ["ValidationResult", "validate", "check_static"]
