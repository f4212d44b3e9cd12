"""Validation: static checks, then probes in a sandbox. Every rejection carries a readable reason."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..config import SandboxConfig
from ..hypothesis import Hypothesis
from ..kinds import get_kind
from ..sandbox import Sandbox, SandboxError, open_sandbox
from .dynamic import PROBE_TARGET, PROBES_TARGET
from .loader import StaticCheckError, load_checked
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


def validate_many(hypotheses: list[Hypothesis], sandbox: Sandbox,
                  config: SandboxConfig | None = None) -> list[ValidationResult]:
    """`validate` for many hypotheses with one sandbox round trip for all their probes.

    Each probe has its own time limit inside the worker. If the batch still fails (the worker
    died, or a probe swallowed its interruption), every hypothesis is probed again on its own.
    """
    config = config or SandboxConfig()
    results: list[ValidationResult | None] = []
    pending: list[int] = []
    for i, h in enumerate(hypotheses):
        reasons = check_static(h.source, get_kind(h.kind))
        results.append(ValidationResult(False, reasons, "static") if reasons else None)
        if not reasons:
            pending.append(i)
    if not pending:
        return results
    items = [{"source": hypotheses[i].source, "kind": hypotheses[i].kind} for i in pending]
    try:
        answer = sandbox.call(PROBES_TARGET, {"items": items, "timeout_s": config.probe_timeout_s},
                              timeout=config.probe_timeout_s * (len(items) + 1))
    except SandboxError:
        for i in pending:
            results[i] = validate(hypotheses[i], sandbox, config)
        return results
    for i, reasons in zip(pending, answer["reasons"]):
        results[i] = ValidationResult(not reasons, list(reasons), "dynamic" if reasons else None)
    return results


def runs_any_code(hypotheses: list[Hypothesis]) -> bool:
    """Whether validating these would start a sandbox: some hypothesis passes the static checks
    (a file with a syntax error, say, is answered without one)."""
    return any(not check_static(h.source, get_kind(h.kind)) for h in hypotheses)


__all__ = ["ValidationResult", "validate", "validate_many", "runs_any_code", "check_static", "load_checked",
           "StaticCheckError"]
