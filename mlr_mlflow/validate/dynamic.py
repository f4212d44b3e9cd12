"""Dynamic probes: load the hypothesis inside the sandbox and try it on synthetic inputs."""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

from ..hypothesis import load_function
from ..kinds import get_kind

PROBE_TARGET = "mlr_mlflow.validate.dynamic:run_probe"
PROBES_TARGET = "mlr_mlflow.validate.dynamic:run_probes"


class _ProbeTimeout(BaseException):
    """Raised into a probe that ran past its own time limit."""


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


@contextmanager
def _time_limit(seconds: float):
    """Interrupt the block after `seconds` (re-firing every second, in case it is swallowed)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise _ProbeTimeout()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_probes(payload: dict) -> dict:
    """Sandbox target: {"items": [{"source", "kind"}], "timeout_s"} -> {"reasons": [[...], ...]}.

    Probes many hypotheses in one round trip; each has its own time limit, so one that hangs fails
    alone. (One that swallows the interruption still meets the parent's wall clock for the batch.)
    """
    out = []
    for item in payload["items"]:
        try:
            with _time_limit(payload["timeout_s"]):
                out.append(run_probe(item)["reasons"])
        except _ProbeTimeout:
            out.append([f"probe timed out after {payload['timeout_s']:g} s"])
    return {"reasons": out}
