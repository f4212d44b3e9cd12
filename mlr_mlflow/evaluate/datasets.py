"""The dataset suite: scikit-learn's bundled sets plus seeded synthetic ones, all offline, and the
user's own tables (`csv:PATH`, `parquet:PATH`, see `tables`).

A suite is a list of tasks (`TaskConfig`: a dataset and a model family); the default suite is each
bundled table on the MLP, named by its dataset. Images and sequences are stored flattened, one row
per example, with their shape in `INPUT_SHAPES`; the MLP reads any of them as a feature table.

Each dataset has a fixed stratified train/val/test split (seeded by `SuiteConfig.split_seed`, not by
the training seeds) and a digest of its arrays and split, logged to MLflow so that a changed dataset
is visible next to the runs it produced.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import SuiteConfig, TaskConfig, UsageError
from ..config.evaluation import FAMILY_REFUSES
from .generated import GENERATED
from .tables import DatasetError, is_file_dataset, read_table


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


def _shapes():
    """8x8 images of a bar, horizontal, vertical or diagonal, at a random place, in pixel noise."""
    rng = np.random.default_rng(5)
    n = 1200
    X = rng.normal(0.0, 0.2, size=(n, 8, 8))
    y = rng.integers(0, 3, size=n)
    for i in range(n):
        r, c, length = rng.integers(0, 8), rng.integers(0, 8), 4
        for k in range(length):
            if y[i] == 0:
                X[i, r, (c + k) % 8] += 1.0
            elif y[i] == 1:
                X[i, (r + k) % 8, c] += 1.0
            else:
                X[i, (r + k) % 8, (c + k) % 8] += 1.0
    return X.reshape(n, 64), y


SEQUENCE_LENGTH, SEQUENCE_VOCAB = 8, 4


def _sequence_match():
    """Sequences of 8 tokens from 4; the label says whether the first token equals the last one
    (half of them by construction): a comparison across positions, the job of attention."""
    rng = np.random.default_rng(6)
    n = 2000
    X = rng.integers(0, SEQUENCE_VOCAB, size=(n, SEQUENCE_LENGTH))
    same = rng.random(n) < 0.5
    other = (X[:, 0] + rng.integers(1, SEQUENCE_VOCAB, size=n)) % SEQUENCE_VOCAB
    X[:, -1] = np.where(same, X[:, 0], other)
    return X.astype(np.float64), same.astype(np.int64)


DATASETS = {
    "iris": _iris, "wine": _wine, "breast_cancer": _breast_cancer, "digits": _digits,
    "moons": _moons, "circles": _circles, "xor": _xor, "hard_classification": _hard_classification,
    "shapes": _shapes, "sequence_match": _sequence_match, **GENERATED,
}
# what a row is, beyond a feature vector: images (channels, height, width), sequences (length, vocab)
INPUT_SHAPES = {"digits": ("image", (1, 8, 8)), "shapes": ("image", (1, 8, 8)),
                "sequence_match": ("sequence", (SEQUENCE_LENGTH, SEQUENCE_VOCAB))}
# the kind of input each model family needs (None: any dataset, read as a feature table)
FAMILY_INPUT = {"mlp": None, "cnn": "image", "attention": "sequence"}


class UnknownDatasetError(UsageError):
    """A dataset name that is not in the suite's registry (a usage error)."""


@dataclass(frozen=True)
class Dataset:
    """One task's dataset with its fixed split. Features are float64, labels int64 in
    [0, n_classes). `name` is the task's name (the dataset's own in the default suite); `family`
    the model trained on it; `input_shape` a row's shape for that family; `source` where it came
    from (a bundled name or "csv:PATH")."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    digest: str
    family: str = "mlp"
    input_shape: tuple[int, ...] = ()
    source: str = ""

    def payload(self) -> dict:
        """The plain dict a training job receives (an MLP task's is what it always was)."""
        keys = ("name", "X_train", "y_train", "X_val", "y_val", "X_test", "y_test", "n_classes")
        extra = {} if self.family == "mlp" else {"family": self.family, "input_shape": list(self.input_shape)}
        return {**{k: getattr(self, k) for k in keys}, **extra}


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def _split(name: str, X, y, suite: SuiteConfig, where: str):
    from sklearn.model_selection import train_test_split

    X = np.asarray(X, dtype=np.float64)
    y = np.unique(np.asarray(y), return_inverse=True)[1].astype(np.int64)
    try:
        X_rest, X_test, y_rest, y_test = train_test_split(
            X, y, test_size=suite.test_fraction, stratify=y, random_state=suite.split_seed)
        X_train, X_val, y_train, y_val = train_test_split(
            X_rest, y_rest, test_size=suite.val_fraction, stratify=y_rest, random_state=suite.split_seed)
    except ValueError as exc:  # too few rows of a class for a stratified split
        raise DatasetError(f"{where}: cannot split it into train/val/test by class: {exc}") from None
    return X_train, y_train, X_val, y_val, X_test, y_test, int(y.max() + 1)


def load_dataset(name: str, suite: SuiteConfig) -> Dataset:
    """A bundled dataset under its own name, for the MLP."""
    return load_task(TaskConfig(name=name, dataset=name), suite)


def load_task(task: TaskConfig, suite: SuiteConfig) -> Dataset:
    """The task's dataset with its split; a usage error when it is missing, unreadable or does not
    fit the task's model family."""
    where = f"task {task.name}"
    if is_file_dataset(task.dataset):
        X, y = read_table(task.dataset, task.target, where)
        shape = ("table", (X.shape[1],))
        source = f"{task.dataset.split(':', 1)[0]}:{Path(task.dataset.split(':', 1)[1]).resolve()}"
    elif task.dataset in DATASETS:
        X, y = DATASETS[task.dataset]()
        shape = INPUT_SHAPES.get(task.dataset, ("table", (np.shape(X)[1],)))
        source = task.dataset
    else:
        raise UnknownDatasetError(f"{where}: unknown dataset {task.dataset!r} (known: "
                                  f"{', '.join(DATASETS)}, or csv:PATH, parquet:PATH)")
    needs = FAMILY_INPUT[task.model]
    if needs is not None and shape[0] != needs:
        fitting = [n for n, (what, _) in INPUT_SHAPES.items() if what == needs]
        raise DatasetError(f"{where}: model {task.model!r} needs {needs} data, and {task.dataset!r} is "
                           f"{'an' if shape[0] == 'image' else 'a'} {shape[0]} (try {', '.join(fitting)})")
    arrays = _split(task.name, X, y, suite, where)
    return Dataset(task.name, *arrays, _digest(*arrays[:6]), family=task.model,
                   input_shape=tuple(shape[1]) if task.model != "mlp" else (), source=source)


def load_suite(suite: SuiteConfig) -> list[Dataset]:
    if not suite.tasks:
        unknown = [n for n in suite.datasets if n not in DATASETS]
        if unknown:
            raise UnknownDatasetError(f"unknown dataset(s) {', '.join(map(repr, unknown))} "
                                      f"(known: {', '.join(DATASETS)})")
    tasks = suite.task_list()
    if not tasks:
        raise UnknownDatasetError("the dataset suite is empty")
    return [load_task(t, suite) for t in tasks]




def check_suite(suite_config: SuiteConfig, kind: str) -> list[Dataset]:
    """The loaded suite, or the usage error that must stop a command before it writes anything."""
    suite = load_suite(suite_config)
    check_kind_fits(kind, suite)
    return suite


def check_kind_fits(kind: str, suite: list[Dataset]) -> None:
    """A usage error when a task's model family has no slot for `kind`."""
    refused = [ds.name for ds in suite if kind in FAMILY_REFUSES.get(ds.family, ())]
    if refused:
        raise DatasetError(f"kind {kind!r} does not apply to task(s) {', '.join(refused)}: "
                           f"{kind} works on feature tables (model 'mlp'), not on images or sequences")
