"""An archive against reward collapse: a MAP-Elites grid over behaviour descriptors.

Each evaluated hypothesis has a behavioural fingerprint (fingerprint.py). A few descriptors a
researcher would name are read off it, each cut into a handful of bins; the bins name a cell, and
the archive keeps the best hypothesis of each cell by `screen_score` (Mouret & Clune, 2015).
Parents drawn from the elites differ in behaviour by construction, where the top-k by score tends
to become near copies of one idea (the seed paper's open question 3).

Descriptors per kind (each also mapped to [0, 1] for behavioural distances):
- activation:    slope on the negative side, smoothness (largest jump of the slope between
                 neighbouring probe points), saturation (slope at the ends against the largest),
                 monotonicity (share of rising steps);
- preprocessing: width (output columns over input columns), spread (log10 std of the outputs),
                 tail (largest |z| of the outputs: an outlier kept or squashed), monotonicity
                 (rank correlation of each column with its input);
- regularizer:   strength (log10 mean |gradient|), exponent (how the gradient grows with the weights'
                 scale: L1 0, L2 1, L4 3), evenness (spread of |gradient| over one matrix's weights,
                 relative to its mean: L1 pushes every weight alike, 0; L2 in proportion, ~0.75),
                 balance (spread of the per-matrix gradient size: sum- against mean-reductions).

Everything is built from the data passed in, so the same entries give the same archive and the same
parents for a seed, whatever order they come in; a resumed round rebuilds it from the store.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import numpy as np

from ..fingerprint import REGULARIZER_SHAPES, probe_matrices


@dataclass(frozen=True)
class Descriptor:
    """One behaviour axis: its bin edges, and the range that maps it onto [0, 1]."""

    name: str
    edges: tuple[float, ...]
    low: float
    high: float

    def bin(self, value: float) -> int:
        return int(np.searchsorted(self.edges, value, side="right"))

    def unit(self, value: float) -> float:
        return float(np.clip((value - self.low) / (self.high - self.low), 0.0, 1.0))


DESCRIPTORS = {
    "activation": (Descriptor("negative_slope", (-0.02, 0.02, 0.2, 0.6), -0.5, 1.5),
                   Descriptor("smoothness", (0.05, 0.15, 0.4), 0.0, 1.0),
                   Descriptor("saturation", (0.1, 0.4, 0.75), 0.0, 1.0),
                   Descriptor("monotonicity", (0.6, 0.9, 0.999), 0.0, 1.0)),
    "preprocessing": (Descriptor("width", (0.99, 1.01), 0.0, 3.0),
                      Descriptor("spread", (-1.0, -0.3, 0.3, 1.0), -2.0, 2.0),
                      Descriptor("tail", (2.0, 3.0, 5.0), 0.0, 8.0),
                      Descriptor("monotonicity", (0.0, 0.9, 0.999), -1.0, 1.0)),
    "regularizer": (Descriptor("strength", (-6.0, -5.0, -4.0, -3.0), -8.0, -1.0),
                    Descriptor("exponent", (0.25, 0.75, 1.5, 2.5), -1.0, 4.0),
                    Descriptor("evenness", (0.2, 0.5), 0.0, 1.5),
                    Descriptor("balance", (0.1, 0.3), 0.0, 1.0)),
}
_EPS = 1e-12


def _activation(fp: np.ndarray) -> list[float]:
    y, g = fp[:48], fp[64:112]  # values and slopes on the grid linspace(-6, 6, 48)
    top = float(np.abs(g).max()) + _EPS
    return [float(g[:24].mean()), float(np.abs(np.diff(g)).max()) / top,
            float(abs(g[0]) + abs(g[-1])) / (2 * top), float((np.diff(y) >= -1e-9).mean())]


def _rank(v: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(v, kind="stable"), kind="stable").astype(float)


def _preprocessing(fp: np.ndarray) -> list[float]:
    rows, cols = int(fp[0]), int(fp[1])
    values = fp[4:]
    A = values[:rows * cols] if len(values) >= rows * cols else values
    std = float(A.std()) + _EPS
    tail = float(np.abs(A - A.mean()).max()) / std
    mono = 0.0
    X, _ = probe_matrices()
    if cols == X.shape[1] and rows == X.shape[0] and len(values) >= rows * cols:
        out = A.reshape(rows, cols)
        corr = []
        for j in range(cols):
            a, b = _rank(X[:, j]), _rank(out[:, j])
            sa, sb = a.std(), b.std()
            corr.append(0.0 if sa == 0 or sb == 0 else float(((a - a.mean()) * (b - b.mean())).mean() / (sa * sb)))
        mono = float(np.mean(corr))
    return [cols / X.shape[1], math.log10(std), tail, mono]


def _regularizer(fp: np.ndarray) -> list[float]:
    half = len(fp) // 2
    small, large = np.abs(fp[:half]), np.abs(fp[half:])
    strength = float(large.mean())
    exponent = math.log10((strength + _EPS) / (float(small.mean()) + _EPS))
    sizes, spreads, start = [], [], 0
    for shape in REGULARIZER_SHAPES:
        part = large[start:start + math.prod(shape)]
        start += len(part)
        sizes.append(math.log10(float(part.mean()) + _EPS))
        spreads.append(float(part.std()) / (float(part.mean()) + _EPS))
    return [math.log10(strength + _EPS), exponent, float(np.mean(spreads)), float(np.std(sizes))]


MEASURE = {"activation": _activation, "preprocessing": _preprocessing, "regularizer": _regularizer}


def describe(kind: str, fingerprint: np.ndarray) -> list[float]:
    """The descriptors' raw values for one fingerprint (see the module docstring)."""
    return MEASURE[kind](np.asarray(fingerprint, dtype=np.float64))


@dataclass(frozen=True)
class Entry:
    """One evaluated hypothesis offered to the archive. `key` (its sha256) breaks ties;
    `payload` travels along untouched (a run id, a genome...)."""

    key: str
    score: float
    fingerprint: np.ndarray = field(compare=False, repr=False)
    payload: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Elite:
    entry: Entry
    cell: tuple[int, ...]
    point: tuple[float, ...]  # the descriptors mapped to [0, 1]


class Archive:
    """The best entry per cell of `kind`'s descriptor grid."""

    def __init__(self, kind: str, entries=()):
        self.kind = kind
        self.descriptors = DESCRIPTORS[kind]
        self.cells: dict[tuple[int, ...], Elite] = {}
        for entry in entries:
            self.add(entry)

    @property
    def size(self) -> int:
        """The number of cells of the grid."""
        return math.prod(len(d.edges) + 1 for d in self.descriptors)

    @property
    def coverage(self) -> float:
        return len(self.cells) / self.size

    def place(self, fingerprint) -> tuple[tuple[int, ...], tuple[float, ...]] | None:
        try:
            values = describe(self.kind, fingerprint)
        except (IndexError, ValueError, ZeroDivisionError):  # a fingerprint of another shape
            return None
        if not all(math.isfinite(v) for v in values):
            return None
        return (tuple(d.bin(v) for d, v in zip(self.descriptors, values)),
                tuple(d.unit(v) for d, v in zip(self.descriptors, values)))

    def add(self, entry: Entry) -> bool:
        """Keep `entry` when its cell is empty or it beats the elite there; True when kept."""
        if entry.fingerprint is None or not math.isfinite(entry.score):
            return False
        placed = self.place(entry.fingerprint)
        if placed is None:
            return False
        cell, point = placed
        held = self.cells.get(cell)
        if held is not None and (-held.entry.score, held.entry.key) <= (-entry.score, entry.key):
            return False
        self.cells[cell] = Elite(entry, cell, point)
        return True

    def elites(self) -> list[Elite]:
        """Best first; ties by key."""
        return sorted(self.cells.values(), key=lambda e: (-e.entry.score, e.entry.key))

    def parents(self, limit: int, seed: int) -> list[Entry]:
        """`limit` elites, best first: the better half of them by score, the rest drawn uniformly
        from the other elites with `random.Random(seed)` (MAP-Elites' uniform selection)."""
        elites = self.elites()
        if len(elites) <= limit:
            return [e.entry for e in elites]
        best = (limit + 1) // 2
        drawn = random.Random(seed).sample(elites[best:], limit - best)
        chosen = elites[:best] + sorted(drawn, key=lambda e: (-e.entry.score, e.entry.key))
        return [e.entry for e in chosen]


def distance(a, b) -> float:
    """Behavioural distance of two descriptor points in [0, 1]^d, scaled into [0, 1]."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.linalg.norm(a - b) / math.sqrt(len(a)))


def mean_pairwise_distance(points: list) -> float:
    """The mean distance over all pairs (0 for fewer than two points)."""
    pairs = [(i, j) for i in range(len(points)) for j in range(i + 1, len(points))]
    return float(np.mean([distance(points[i], points[j]) for i, j in pairs])) if pairs else 0.0
