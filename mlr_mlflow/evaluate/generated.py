"""Generated tasks: seeded synthetic classification sets made offline, large enough that one test
example does not decide a comparison (2,400 rows: 600 test rows at the default 25 %).

They were chosen with `mlr-mlflow suite check` (docs/benchmarks.md, "The instrument") for what the
bundled tables lack under full training: headroom (no activation gets them all right) and a signal
across components well above the noise across seeds. Each is a pure function of its seed.
"""
from __future__ import annotations

import numpy as np

N_ROWS = 2400


def hastie() -> tuple[np.ndarray, np.ndarray]:
    """Hastie et al.'s 10-2 problem: ten Gaussian features, the label says whether their squared
    norm exceeds the chi-square median (a spherical boundary in 10 dimensions)."""
    from sklearn.datasets import make_hastie_10_2

    X, y = make_hastie_10_2(n_samples=N_ROWS, random_state=11)
    return X, (y > 0).astype(np.int64)


def spirals() -> tuple[np.ndarray, np.ndarray]:
    """Three interleaved spiral arms in the plane, with radial noise."""
    rng = np.random.default_rng(12)
    n = N_ROWS // 3
    X, y = [], []
    for arm in range(3):
        t = np.sqrt(rng.uniform(0.05, 1.0, n)) * 3.0 * np.pi
        angle = t + arm * 2.0 * np.pi / 3.0
        r = t / (3.0 * np.pi) * 2.0
        pts = np.stack([r * np.cos(angle), r * np.sin(angle)], axis=1) + rng.normal(0, 0.12, (n, 2))
        X.append(pts)
        y.append(np.full(n, arm))
    return np.concatenate(X), np.concatenate(y).astype(np.int64)


def checkerboard() -> tuple[np.ndarray, np.ndarray]:
    """A 4x4 checkerboard on the unit square (label = parity of the cell), 3 % of labels flipped,
    and two noise features."""
    rng = np.random.default_rng(13)
    X = rng.uniform(0.0, 1.0, (N_ROWS, 4))
    y = ((np.floor(X[:, 0] * 4) + np.floor(X[:, 1] * 4)) % 2).astype(np.int64)
    flip = rng.random(N_ROWS) < 0.03
    return X * 2.0 - 1.0, np.where(flip, 1 - y, y)


def classes6() -> tuple[np.ndarray, np.ndarray]:
    """Six classes in 20 features, 8 informative, one Gaussian cluster each, 3 % label noise."""
    from sklearn.datasets import make_classification

    return make_classification(n_samples=N_ROWS, n_features=20, n_informative=8, n_redundant=4,
                               n_classes=6, n_clusters_per_class=1, class_sep=1.0, flip_y=0.03,
                               random_state=14)


def sine_boundary() -> tuple[np.ndarray, np.ndarray]:
    """Two features; the label says whether the second lies above a sine of the first (two periods),
    with two noise features and 3 % label noise."""
    rng = np.random.default_rng(15)
    X = rng.uniform(-1.0, 1.0, (N_ROWS, 4))
    y = (X[:, 1] > 0.6 * np.sin(2.0 * np.pi * X[:, 0])).astype(np.int64)
    flip = rng.random(N_ROWS) < 0.03
    return X, np.where(flip, 1 - y, y)


def rings() -> tuple[np.ndarray, np.ndarray]:
    """Four concentric noisy rings in the plane, one class each."""
    rng = np.random.default_rng(16)
    n = N_ROWS // 4
    X, y = [], []
    for ring in range(4):
        angle = rng.uniform(0.0, 2.0 * np.pi, n)
        r = 0.25 + 0.25 * ring + rng.normal(0.0, 0.06, n)
        X.append(np.stack([r * np.cos(angle), r * np.sin(angle)], axis=1))
        y.append(np.full(n, ring))
    return np.concatenate(X), np.concatenate(y).astype(np.int64)


GENERATED = {"hastie": hastie, "spirals": spirals, "checkerboard": checkerboard, "classes6": classes6,
             "sine_boundary": sine_boundary, "rings": rings}
