"""Preprocessing functions: `preprocess(X_train, X_test)` transforms the features before training."""
from __future__ import annotations

from .base import Kind

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


def probe(fn) -> list[str]:
    import numpy as np

    rng = np.random.default_rng(0)
    X_train = rng.normal(2.0, 3.0, size=(60, 4))
    X_test = rng.normal(2.0, 3.0, size=(25, 4))
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
    if A.shape[0] != 60 or B.shape[0] != 25:
        return [f"preprocess changed the row counts: (60, 25) in, ({A.shape[0]}, {B.shape[0]}) out"]
    if A.shape[1] != B.shape[1]:
        return [f"preprocess gave train and test different column counts ({A.shape[1]} vs {B.shape[1]})"]
    if not 1 <= A.shape[1] <= 4 * MAX_COLUMN_FACTOR:
        return [f"preprocess returned {A.shape[1]} columns for 4 inputs (allowed 1..{4 * MAX_COLUMN_FACTOR})"]
    if not (np.isfinite(A).all() and np.isfinite(B).all()):
        return ["preprocess returned NaN or inf"]
    # Statistics come from X_train only: a test row's transform cannot depend on the other test rows.
    _, B_part = fn(X_train.copy(), X_test[:10].copy())
    if not np.allclose(np.asarray(B_part, dtype=np.float64), B[:10], rtol=1e-6, atol=1e-9):
        return ["preprocess uses statistics of X_test (the transform of a test row depends on other test rows)"]
    return []


KIND = Kind(name="preprocessing", function="preprocess", arity=2,
            modules=frozenset({"numpy", "math"}), components=COMPONENTS,
            default="standardize", probe=probe, item_assignment=True)
