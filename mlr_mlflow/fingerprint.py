"""A hypothesis's behavioural fingerprint: what it does on a fixed probe set, computed in the sandbox.

Two sources with different normalised hashes can be the same function (`(x - x) + relu(x)` is ReLU,
`F.relu(x)` is the ReLU baseline). The fingerprint is what training would see:
- activation:    values and slopes at 64 fixed points (a grid on [-6, 6] without 0, N(0, 1) draws);
- preprocessing: the transformed train and test rows of a fixed mixed matrix (normal, skewed,
                 bounded with an outlier), with their shapes;
- regularizer:   the penalty's gradient with respect to fixed weight matrices at two scales (training
                 only sees the gradient: a constant offset changes nothing, and a detached or constant
                 penalty is the same as `none`).
Two fingerprints match when they have the same length and every entry agrees within `tolerance`
relative to its own magnitude, plus a floor of `tolerance` x 1 % of the fingerprints' largest
magnitude (so a regularizer's tiny gradients are compared at their own scale, and a large value at
one point does not hide a difference at another). A hypothesis that fails its kind's probe has no
fingerprint: it is never a duplicate, and neither is one that cannot be measured in time: each
source is measured alone in the sandbox, within its own limit (`reward.features.harness`).
"""
from __future__ import annotations

import base64
import logging
import math
import sys

import numpy as np

from .reward.features.harness import measure_rows, measure_sources, mixed_matrix

log = logging.getLogger(__name__)
FINGERPRINT_TARGET = "mlr_mlflow.fingerprint:fingerprints"
SANDBOX_PRELOAD = ("torch",)  # imported once in the warm sandbox server (sandbox/worker.py)
SANDBOX_WARM_UP = "warm"  # run once in the server, on the built-in defaults (sandbox/worker.py)
MAX_VALUES = 256  # wider fingerprints are projected (fixed seed) so one fits in a run tag
DEFAULT_TOLERANCE = 1e-3
_PREFIX = "f32:"
REGULARIZER_SHAPES = ((5, 3), (4, 5), (2, 4))  # the weight matrices a regularizer's gradient is taken at


def _activation(fn) -> list[float]:
    import torch

    gen = torch.Generator().manual_seed(0)
    # an even count leaves 0 out: a kink there (relu vs clamp's slope at 0) is a measure-zero detail
    points = torch.cat([torch.linspace(-6, 6, 48), torch.randn(16, generator=gen)])
    leaf = points.clone().requires_grad_(True)
    y = fn(leaf * 1.0)
    (grad,) = torch.autograd.grad(y.sum(), leaf, allow_unused=True)
    grad = torch.zeros_like(points) if grad is None else grad
    return y.detach().double().flatten().tolist() + grad.double().flatten().tolist()


def probe_matrices() -> tuple[np.ndarray, np.ndarray]:
    """The fixed (X_train, X_test) a preprocessing is fingerprinted on: the harness's mixed matrix
    (normal, skewed, and bounded columns, the bounded one with an outlier)."""
    rng = np.random.default_rng(0)
    return mixed_matrix(rng, 16), mixed_matrix(rng, 8)


def _preprocessing(fn) -> list[float]:
    A, B = (np.asarray(m, dtype=np.float64) for m in fn(*probe_matrices()))
    values = np.concatenate([A.ravel(), B.ravel()])
    if len(values) > MAX_VALUES - 4:
        # a fixed Gaussian projection keeps distances (Johnson-Lindenstrauss) at a bounded size
        proj = np.random.default_rng(len(values)).normal(size=(MAX_VALUES - 4, len(values)))
        values = proj @ values / math.sqrt(MAX_VALUES - 4)
    return [*map(float, A.shape), *map(float, B.shape), *values.tolist()]


def _regularizer(fn) -> list[float]:
    import torch

    gen = torch.Generator().manual_seed(0)
    base = [torch.randn(s, generator=gen) for s in REGULARIZER_SHAPES]
    out: list[float] = []
    for scale in (0.1, 1.0):
        params = [(b * scale).requires_grad_(True) for b in base]
        value = torch.as_tensor(fn(params)).reshape(())
        grads = (torch.autograd.grad(value, params, allow_unused=True)
                 if value.requires_grad else [None] * len(params))
        for p, g in zip(params, grads):
            out += (torch.zeros_like(p) if g is None else g).double().flatten().tolist()
    return out


MEASURES = {"activation": _activation, "preprocessing": _preprocessing, "regularizer": _regularizer}


class Unfit(ValueError):
    """The hypothesis fails its kind's probe: it has no fingerprint."""


def _fingerprint(kind):
    def measure(fn) -> list[float]:
        if kind.probe(fn):
            raise Unfit(kind.name)
        return MEASURES[kind.name](fn)

    return measure


def warm() -> None:
    """Each kind's fingerprint once on its built-in default, in the warm server before any clock
    runs: what torch initialises on first use is not charged to a hypothesis's time limit."""
    import torch

    from .kinds import KINDS
    from .validate.loader import load_checked

    torch.set_num_threads(1)  # before any pool exists: the server forks
    for kind in KINDS.values():
        _fingerprint(kind)(load_checked(kind.component(kind.default), kind.name))


def fingerprints(payload: dict) -> dict:
    """Sandbox target: {"kind", "sources", "timeout_s"} -> {"features": [[float | None] | None],
    "status": ["ok" | "failed" | "overtime"]} (`reward.features.harness.measure_sources`)."""
    from .kinds import get_kind

    return measure_sources(payload, _fingerprint(get_kind(payload["kind"])))


def compute(kind: str, sources: list[str], sandbox, timeout_s: float = 5.0) -> list[np.ndarray | None]:
    """Fingerprints of `sources` (None where a source fails, fails the static checks, which are
    never sent to the sandbox, or cannot be measured within `timeout_s`), each measured alone in
    `sandbox`. Raises SandboxError when the sandbox itself fails (on the kind's built-in default
    too)."""
    from .kinds import get_kind
    from .reward.rows import BehaviourError, ScoringLimits
    from .sandbox import SandboxError

    kind_ = get_kind(kind)
    limits = ScoringLimits(row_s=timeout_s, request_s=math.inf, max_rows=len(sources),
                           max_code_chars=sys.maxsize)
    try:
        rows, _ = measure_rows(FINGERPRINT_TARGET, kind, sources, limits, sandbox=sandbox,
                               canary=kind_.component(kind_.default), limit="fingerprint timeout_s")
    except BehaviourError as exc:
        raise SandboxError(str(exc)) from None
    return [None if values is None or None in values else np.asarray(values, dtype=np.float64)
            for values in rows]


def matches(a: np.ndarray, b: np.ndarray, tolerance: float = DEFAULT_TOLERANCE) -> bool:
    """Same length, and every entry within `tolerance` of the other (see the module docstring)."""
    if a.shape != b.shape:
        return False
    scale = max(float(np.abs(a).max(initial=0.0)), float(np.abs(b).max(initial=0.0)))
    bound = tolerance * (np.maximum(np.abs(a), np.abs(b)) + 0.01 * scale) + 1e-12
    return bool((np.abs(a - b) <= bound).all())


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """The largest entry-wise difference relative to the bound `matches` uses, per unit of
    tolerance: `matches(a, b, t)` holds (to within 1e-12) when `distance(a, b) <= t`; inf for
    fingerprints of other lengths."""
    if a.shape != b.shape:
        return float("inf")
    scale = max(float(np.abs(a).max(initial=0.0)), float(np.abs(b).max(initial=0.0)))
    bound = np.maximum(np.abs(a), np.abs(b)) + 0.01 * scale + 1e-12
    return float((np.abs(a - b) / bound).max(initial=0.0))


def encode(fingerprint: np.ndarray) -> str:
    """A run tag's value (base64 of float32): at most ~1.4k characters."""
    return _PREFIX + base64.b64encode(np.asarray(fingerprint, "<f4").tobytes()).decode()


def decode(text: str | None) -> np.ndarray | None:
    if not text or not text.startswith(_PREFIX):
        return None
    try:
        return np.frombuffer(base64.b64decode(text[len(_PREFIX):]), "<f4").astype(np.float64)
    except (ValueError, TypeError):
        return None


class Deduplicator:
    """Tells a new proposal apart from the kind's references and from what came before.

    `check(source)` -> (fingerprint, verdict): verdict None (new), ("rediscovery", reference name)
    or ("duplicate", label of the earlier hypothesis: "run:<id>" or "sha256:<hash>").
    `remember(label, fingerprint)` adds one.
    """

    def __init__(self, kind: str, sandbox, references: dict[str, str],
                 tolerance: float = DEFAULT_TOLERANCE):
        self.kind, self.sandbox, self.tolerance = kind, sandbox, tolerance
        names = list(references)
        fps = compute(kind, [references[n] for n in names], sandbox)
        self.references = [(n, fp) for n, fp in zip(names, fps) if fp is not None]
        self.known: list[tuple[str, np.ndarray]] = []
        self.sha_of: dict[str, str] = {}  # run id -> its hypothesis's hash, for the records

    def remember(self, label: str, fingerprint: np.ndarray | None) -> None:
        if fingerprint is not None:
            self.known.append((label, fingerprint))

    def verdict(self, fingerprint: np.ndarray | None) -> tuple[str, str] | None:
        if fingerprint is None:
            return None
        for name, ref in self.references:
            if matches(fingerprint, ref, self.tolerance):
                return "rediscovery", name
        for label, earlier in self.known:
            if matches(fingerprint, earlier, self.tolerance):
                return "duplicate", label
        return None

    def fingerprint_many(self, sources: list[str]) -> list[np.ndarray | None]:
        """Fingerprints of a batch of `sources` (the harness measures each in its own call on a
        warm server). A batch the sandbox fails as a whole is retried one source at a time, so
        only the culprit goes without a fingerprint: validation, which comes next, judges it."""
        from .sandbox import SandboxError

        try:
            return compute(self.kind, sources, self.sandbox)
        except SandboxError as exc:
            if len(sources) == 1:
                log.warning("dedup: no fingerprint for a proposal (%s); it goes on to validation", exc)
                return [None]
        return [fp for source in sources for fp in self.fingerprint_many([source])]

    def check(self, source: str) -> tuple[np.ndarray | None, tuple[str, str] | None]:
        """A source that breaks the sandbox (kills its worker, hangs past every limit) gets no
        fingerprint: validation, which comes next, judges it."""
        from .sandbox import SandboxError

        try:
            (fingerprint,) = compute(self.kind, [source], self.sandbox)
        except SandboxError as exc:
            log.warning("dedup: no fingerprint for a proposal (%s); it goes on to validation", exc)
            return None, None
        return fingerprint, self.verdict(fingerprint)
