"""The user's own data: a CSV or Parquet table with one target column, read as a feature table.

Every problem a user can fix (a missing file, a missing target column, non-numeric or missing
values, a single class) is a `DatasetError`, a usage error: the command exits 2 before anything
is written to the store.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..config import UsageError

FILE_FORMATS = ("csv", "parquet")


class DatasetError(UsageError):
    """A dataset that cannot be used as given (a usage error)."""


def is_file_dataset(spec: str) -> bool:
    return spec.split(":", 1)[0] in FILE_FORMATS and ":" in spec


def read_table(spec: str, target: str = "", where: str = "") -> tuple[np.ndarray, np.ndarray]:
    """`csv:PATH` or `parquet:PATH` -> (X float64 [N, D], y as read). `target` names the label
    column (empty: the last one); every other column must be numeric with no missing values."""
    import pandas as pd

    fmt, path = spec.split(":", 1)
    where = where or spec
    if not Path(path).is_file():
        raise DatasetError(f"{where}: file not found: {path}")
    try:
        frame = pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path)
    except Exception as exc:  # a parser's own message names the problem
        raise DatasetError(f"{where}: cannot read {path} as {fmt}: {type(exc).__name__}: {exc}"
                           .splitlines()[0]) from None
    if frame.shape[1] < 2:
        raise DatasetError(f"{where}: {path} needs a target column and at least one feature column")
    target = target or str(frame.columns[-1])
    if target not in frame.columns:
        raise DatasetError(f"{where}: target column {target!r} not in {path} "
                           f"(columns: {', '.join(map(str, frame.columns))})")
    features = frame.drop(columns=[target])
    bad = [str(c) for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    if bad:
        raise DatasetError(f"{where}: non-numeric feature column(s) in {path}: {', '.join(bad)}")
    if features.isna().any().any() or frame[target].isna().any():
        missing = [str(c) for c in frame.columns if frame[c].isna().any()]
        raise DatasetError(f"{where}: missing values in {path}, column(s): {', '.join(missing)}")
    y = frame[target].to_numpy()
    if len(np.unique(y.astype(str))) < 2:
        raise DatasetError(f"{where}: target column {target!r} of {path} has only one class")
    return features.to_numpy(dtype=np.float64), y
