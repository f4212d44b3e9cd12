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
fingerprint: it is never a duplicate.
"""
from __future__ import annotations

import base64
import logging
import math

import numpy as np

log = logging.getLogger(__name__)
FINGERPRINT_TARGET = "mlr_mlflow.fingerprint:fingerprints"
# torch is imported by the warm sandbox server, on its start-up clock, not on a call's 5 s: on a busy
# machine importing it alone outlasted the call, and each timeout killed the worker for the next one
SANDBOX_PRELOAD = ("torch",)
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
    """The fixed (X_train, X_test) a preprocessing is fingerprinted on: normal, skewed, and
    bounded columns, the bounded one with an outlier."""
    rng = np.random.default_rng(0)

    def matrix(rows: int):
        bounded = rng.uniform(0, 1, rows)
        bounded[0] = 25.0  # an outlier
        return np.stack([rng.normal(3, 2, rows), rng.lognormal(0, 1, rows), bounded], axis=1)

    return matrix(16), matrix(8)


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


def fingerprints(payload: dict) -> dict:
    """Sandbox target: {"kind", "sources", "timeout_s"} -> {"fingerprints": [[float] | None]}."""
    import torch

    from .kinds import get_kind
    from .sandbox.alarm import Overtime, time_limit
    from .validate.loader import load_checked

    torch.set_num_threads(1)
    kind = get_kind(payload["kind"])
    out = []
    for source in payload["sources"]:
        try:
            with time_limit(payload.get("timeout_s", 5.0)):
                fn = load_checked(source, kind.name)
                values = None if kind.probe(fn) else MEASURES[kind.name](fn)
        except (Overtime, Exception):
            values = None
        out.append(values if values is not None and all(math.isfinite(v) for v in values) else None)
    return {"fingerprints": out}


def compute(kind: str, sources: list[str], sandbox, timeout_s: float = 5.0) -> list[np.ndarray | None]:
    """Fingerprints of `sources` (None where a source fails), computed in `sandbox`. Statically
    unclean sources are never sent there. Raises SandboxError when the sandbox itself fails."""
    from .kinds import get_kind
    from .validate import check_static

    clean = [i for i, s in enumerate(sources) if not check_static(s, get_kind(kind))]
    result: list[np.ndarray | None] = [None] * len(sources)
    if not clean:
        return result
    answer = sandbox.call(FINGERPRINT_TARGET, {"kind": kind, "sources": [sources[i] for i in clean],
                                               "timeout_s": timeout_s},
                          timeout=10.0 + timeout_s * len(clean))
    for i, values in zip(clean, answer["fingerprints"]):
        result[i] = None if values is None else np.asarray(values, dtype=np.float64)
    return result


def matches(a: np.ndarray, b: np.ndarray, tolerance: float = DEFAULT_TOLERANCE) -> bool:
    """Same length, and every entry within `tolerance` of the other (see the module docstring)."""
    if a.shape != b.shape:
        return False
    scale = max(float(np.abs(a).max(initial=0.0)), float(np.abs(b).max(initial=0.0)))
    bound = tolerance * (np.maximum(np.abs(a), np.abs(b)) + 0.01 * scale) + 1e-12
    return bool((np.abs(a - b) <= bound).all())


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
