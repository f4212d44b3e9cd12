"""Dynamic probes: load the hypothesis inside the sandbox and try it on synthetic inputs."""
from __future__ import annotations

import hashlib

from ..kinds import get_kind
from ..sandbox.alarm import Overtime, time_limit
from .loader import load_checked

PROBE_TARGET = "mlr_mlflow.validate.dynamic:run_probe"
PROBES_TARGET = "mlr_mlflow.validate.dynamic:run_probes"
SANDBOX_PRELOAD = ("torch",)  # imported once in the warm sandbox server (sandbox/worker.py)


def probe_seed(source: str) -> int:
    """The probe's inputs are drawn from the source's hash: the same source always meets the same
    probe (a verdict can be audited), and the code cannot know its own hash, so it cannot know the
    probe's shapes."""
    return int.from_bytes(hashlib.sha256(source.encode()).digest()[:8], "big") % 2 ** 63


def run_probe(payload: dict) -> dict:
    """Sandbox target: {"source", "kind"} -> {"reasons": [...]}. Runs in the worker only."""
    import torch

    torch.set_num_threads(1)
    kind = get_kind(payload["kind"])
    try:
        fn = load_checked(payload["source"], kind.name)
    except Exception as exc:
        return {"reasons": [f"loading the hypothesis failed: {type(exc).__name__}: {exc}"]}
    try:
        reasons = kind.probe(fn, probe_seed(payload["source"]))
    except Exception as exc:
        reasons = [f"{kind.function} raised on a probe input: {type(exc).__name__}: {exc}"]
    return {"reasons": reasons}


def run_probes(payload: dict) -> dict:
    """Sandbox target: {"items": [{"source", "kind"}], "timeout_s"} -> {"reasons": [[...], ...]}.

    Probes many hypotheses in one round trip; each has its own time limit (`sandbox.alarm`), so one
    that hangs fails alone. The parent's wall clock for the batch remains the backstop.
    """
    import torch  # imported before any clock starts: its import is not the hypotheses' time

    torch.set_num_threads(1)
    out = []
    for item in payload["items"]:
        try:
            with time_limit(payload["timeout_s"]):
                reasons = run_probe(item)["reasons"]
        except Overtime:
            reasons = [f"probe timed out after {payload['timeout_s']:g} s"]
        out.append(reasons)
    return {"reasons": out}
