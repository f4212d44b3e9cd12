"""Preprocessing functions: `preprocess(X_train, X_test)` transforms the features before training."""
from __future__ import annotations

from .base import REPEAT_CALLS, Kind, repeat_check

COMPONENTS = {
    "none": "def preprocess(X_train, X_test):\n    return X_train, X_test\n",
    # Columns constant in X_train keep scale 1 (as scikit-learn's StandardScaler does): dividing
    # them by a tiny epsilon blows up test rows where the column is not constant (digits' pixels).
    "standardize": (
        "import numpy as np\n\n"
        "def preprocess(X_train, X_test):\n"
        "    m = X_train.mean(0)\n"
        "    s = X_train.std(0)\n"
        "    s = np.where(s > 1e-8, s, 1.0)\n"
        "    return (X_train - m) / s, (X_test - m) / s\n"),
    "minmax": (
        "import numpy as np\n\n"
        "def preprocess(X_train, X_test):\n"
        "    lo = X_train.min(0)\n"
        "    span = X_train.max(0) - lo\n"
        "    span = np.where(span > 1e-8, span, 1.0)\n"
        "    return (X_train - lo) / span, (X_test - lo) / span\n"),
    "robust": (
        "import numpy as np\n\n"
        "def preprocess(X_train, X_test):\n"
        "    med = np.median(X_train, axis=0)\n"
        "    q1, q3 = np.percentile(X_train, [25, 75], axis=0)\n"
        "    iqr = np.where(q3 - q1 > 1e-8, q3 - q1, 1.0)\n"
        "    return (X_train - med) / iqr, (X_test - med) / iqr\n"),
    # Quantile transform to a uniform [0, 1] output (scikit-learn's QuantileTransformer default),
    # centred so that the MLP sees zero-mean features.
    "quantile": (
        "import numpy as np\n\n"
        "def preprocess(X_train, X_test):\n"
        "    ref = np.sort(X_train, axis=0)\n"
        "    levels = np.linspace(0.0, 1.0, ref.shape[0])\n"
        "    def transform(X):\n"
        "        cols = [np.interp(X[:, j], ref[:, j], levels) for j in range(X.shape[1])]\n"
        "        return np.stack(cols, axis=1) - 0.5\n"
        "    return transform(X_train), transform(X_test)\n"),
}

MAX_COLUMN_FACTOR = 16


def probe_arrays(seed: int):
    """(X_train, X_test, X_other) of a shape and per-column distribution drawn from `seed`: a
    function cannot recognise the probe by its shape (a fixed 60x4 and 25x4 let one behave
    honestly here and read the test rows in training). Every column is continuous, so an
    honest function's verdict does not depend on the draw."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n_train, n_test, d = int(rng.integers(20, 400)), int(rng.integers(6, 200)), int(rng.integers(3, 13))
    loc, scale = rng.uniform(-5.0, 5.0, d), np.exp(rng.uniform(np.log(0.2), np.log(20.0), d))
    skew = rng.random(d) < 0.3  # some columns log-normal, as counts and prices are

    def draw(n: int, shift: float = 0.0):
        z = rng.standard_normal((n, d))
        z = np.where(skew, np.exp(0.7 * z) - 1.0, z)
        return loc + shift + scale * z

    # X_other replaces test rows in the independence check: another mean, so no statistic of it
    # matches the test rows'.
    return draw(n_train), draw(n_test), draw(n_test, shift=1.5)


def probe(fn, seed: int = 0) -> list[str]:
    import numpy as np

    X_train, X_test, X_other = probe_arrays(seed)
    (n_train, d), n_test = X_train.shape, X_test.shape[0]
    keep_train, keep_test = X_train.copy(), X_test.copy()
    out = fn(X_train, X_test)
    if not np.array_equal(X_train, keep_train) or not np.array_equal(X_test, keep_test):
        return ["preprocess modified its input arrays in place"]
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        return ["preprocess must return a pair (X_train, X_test)"]
    try:
        A, B = (np.asarray(a, dtype=np.float64) for a in out)
    except (TypeError, ValueError) as exc:
        return [f"preprocess returned something that is not a numeric array: {exc}"]
    if A.ndim != 2 or B.ndim != 2:
        return [f"preprocess must return 2-D arrays, got {A.ndim}-D and {B.ndim}-D"]
    if A.shape[0] != n_train or B.shape[0] != n_test:
        return [f"preprocess changed the row counts: ({n_train}, {n_test}) in, "
                f"({A.shape[0]}, {B.shape[0]}) out"]
    if A.shape[1] != B.shape[1]:
        return [f"preprocess gave train and test different column counts ({A.shape[1]} vs {B.shape[1]})"]
    if not 1 <= A.shape[1] <= d * MAX_COLUMN_FACTOR:
        return [f"preprocess returned {A.shape[1]} columns for {d} inputs "
                f"(allowed 1..{d * MAX_COLUMN_FACTOR})"]
    if not (np.isfinite(A).all() and np.isfinite(B).all()):
        return ["preprocess returned NaN or inf"]
    reasons = check_test_rows(fn, keep_train.copy(), keep_test.copy(), X_other, A, B, seed)
    if reasons:
        return reasons
    others = (probe_arrays(seed + 1 + i)[:2] for i in range(REPEAT_CALLS))
    return repeat_check(fn, "preprocess", (keep_train.copy(), keep_test.copy()), out, others)


def check_test_rows(fn, X_train, X_test, X_other, A, B, seed: int, where: str = "") -> list[str]:
    """Statistics come from X_train only. fn(X_train, X_mixed), where X_mixed holds half of the
    test rows (drawn from `seed`) at other places and rows of X_other elsewhere, must give the
    same train output (A) and, for each kept test row, the same output row (B). Run by the probe
    and, on the real split, by every training job (`evaluate/training/job.py`)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n = len(X_test)
    keep = max(1, n // 2)
    kept, slots = rng.permutation(n)[:keep], rng.permutation(n)[:keep]
    mixed = np.array(X_other[:n], dtype=X_test.dtype)
    mixed[slots] = X_test[kept]
    A2, B2 = (np.asarray(a, dtype=np.float64) for a in fn(X_train.copy(), mixed))
    if A2.shape != A.shape or not np.allclose(A2, A, rtol=1e-6, atol=1e-9):
        return [f"preprocess uses statistics of X_test{where} (its output for the training rows "
                f"changed when test rows changed)"]
    if B2.shape != B.shape or not np.allclose(B2[slots], B[kept], rtol=1e-6, atol=1e-9):
        return [f"preprocess uses statistics of X_test{where} (the transform of a test row depends "
                f"on other test rows)"]
    return []


KIND = Kind(name="preprocessing", function="preprocess", arity=2,
            modules=frozenset({"numpy", "math"}), components=COMPONENTS,
            default="standardize", probe=probe, item_assignment=True)
