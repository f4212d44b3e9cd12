"""Dynamic probes: load the hypothesis inside the sandbox and try it on synthetic inputs."""
from __future__ import annotations

from ..hypothesis import load_function
from ..kinds import get_kind

PROBE_TARGET = "mlr_mlflow.validate.dynamic:run_probe"


def run_probe(payload: dict) -> dict:
    """Sandbox target: {"source", "kind"} -> {"reasons": [...]}. Runs in the worker only."""
    import torch

    torch.set_num_threads(1)
    kind = get_kind(payload["kind"])
    try:
        fn = load_function(payload["source"], kind.name)
    except Exception as exc:
        return {"reasons": [f"loading the hypothesis failed: {type(exc).__name__}: {exc}"]}
    try:
        reasons = kind.probe(fn)
    except Exception as exc:
        reasons = [f"{kind.function} raised on a probe input: {type(exc).__name__}: {exc}"]
    return {"reasons": reasons}
