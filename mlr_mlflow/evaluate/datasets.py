"""The dataset suite: scikit-learn's bundled sets plus seeded synthetic ones, all offline.

Each dataset has a fixed stratified train/val/test split (seeded by `SuiteConfig.split_seed`, not by
the training seeds) and a digest of its arrays and split, logged to MLflow so that a changed dataset
is visible next to the runs it produced.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from ..config import SuiteConfig, UsageError


def _iris():
    from sklearn.datasets import load_iris
    return load_iris(return_X_y=True)


def _wine():
    from sklearn.datasets import load_wine
    return load_wine(return_X_y=True)


def _breast_cancer():
    from sklearn.datasets import load_breast_cancer
    return load_breast_cancer(return_X_y=True)


def _digits():
    from sklearn.datasets import load_digits
    return load_digits(return_X_y=True)


def _moons():
    from sklearn.datasets import make_moons
    return make_moons(n_samples=600, noise=0.25, random_state=1)


def _circles():
    from sklearn.datasets import make_circles
    return make_circles(n_samples=600, noise=0.1, factor=0.5, random_state=2)


def _xor():
    """Two informative dimensions whose label is the sign of their product, two noise dimensions."""
    rng = np.random.default_rng(3)
    X = rng.uniform(-1.0, 1.0, size=(600, 4))
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
    flip = rng.random(600) < 0.03
    return X, np.where(flip, 1 - y, y)


def _hard_classification():
    from sklearn.datasets import make_classification
    return make_classification(n_samples=1000, n_features=20, n_informative=6, n_redundant=4,
                               n_classes=3, n_clusters_per_class=2, class_sep=0.8, flip_y=0.02,
                               random_state=4)


DATASETS = {
    "iris": _iris, "wine": _wine, "breast_cancer": _breast_cancer, "digits": _digits,
    "moons": _moons, "circles": _circles, "xor": _xor, "hard_classification": _hard_classification,
}


class UnknownDatasetError(UsageError):
    """A dataset name that is not in the suite's registry (a usage error)."""


@dataclass(frozen=True)
class Dataset:
    """One dataset with its fixed split. Features are float64, labels int64 in [0, n_classes)."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    digest: str

    def payload(self) -> dict:
        """The plain dict a training job receives."""
        return {k: getattr(self, k) for k in
                ("name", "X_train", "y_train", "X_val", "y_val", "X_test", "y_test", "n_classes")}


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def load_dataset(name: str, suite: SuiteConfig) -> Dataset:
    from sklearn.model_selection import train_test_split

    if name not in DATASETS:
        raise UnknownDatasetError(f"unknown dataset {name!r} (known: {', '.join(DATASETS)})")
    X, y = DATASETS[name]()
    X = np.asarray(X, dtype=np.float64)
    y = np.unique(np.asarray(y), return_inverse=True)[1].astype(np.int64)
    X_rest, X_test, y_rest, y_test = train_test_split(
        X, y, test_size=suite.test_fraction, stratify=y, random_state=suite.split_seed)
    X_train, X_val, y_train, y_val = train_test_split(
        X_rest, y_rest, test_size=suite.val_fraction, stratify=y_rest, random_state=suite.split_seed)
    return Dataset(name, X_train, y_train, X_val, y_val, X_test, y_test, int(y.max() + 1),
                   _digest(X_train, y_train, X_val, y_val, X_test, y_test))


def load_suite(suite: SuiteConfig) -> list[Dataset]:
    unknown = [n for n in suite.datasets if n not in DATASETS]
    if unknown:
        raise UnknownDatasetError(f"unknown dataset(s) {', '.join(map(repr, unknown))} "
                                  f"(known: {', '.join(DATASETS)})")
    if not suite.datasets:
        raise UnknownDatasetError("the dataset suite is empty")
    return [load_dataset(n, suite) for n in suite.datasets]
