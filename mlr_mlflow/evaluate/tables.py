"""The user's own data: a CSV or Parquet table with one target column, read as a feature table.

Every problem a user can fix (a missing or special file, a missing target column, a non-numeric,
infinite or missing value, a single class) is a `DatasetError`, a usage error: the command exits 2 before anything
is written to the store.
"""
from __future__ import annotations

import os
import stat

import numpy as np

from ..config import UsageError

FILE_FORMATS = ("csv", "parquet")


class DatasetError(UsageError):
    """A dataset that cannot be used as given (a usage error)."""


def is_file_dataset(spec: str) -> bool:
    return spec.split(":", 1)[0] in FILE_FORMATS and ":" in spec


# a table is read whole by this (unsandboxed) process and copied into every training job
MAX_TABLE_BYTES = 256 * 1024 * 1024
# features are trained in float32: a larger magnitude would turn into infinity there
FLOAT32_MAX = float(np.finfo(np.float32).max)


def read_table(spec: str, target: str = "", where: str = "") -> tuple[np.ndarray, np.ndarray]:
    """`csv:PATH` or `parquet:PATH` -> (X float64 [N, D], y as read). `target` names the label
    column (empty: the last one); every other column must hold finite numbers, none missing.

    PATH (relative: to the working directory; a config file's are made absolute from its folder)
    may name a regular, non-empty file of at most MAX_TABLE_BYTES, symbolic links followed: never
    a FIFO, device or directory, nor a /proc or /sys file (those read as empty). Errors name the
    resolved path."""
    import pandas as pd

    fmt, name = spec.split(":", 1)
    where = where or spec
    path = os.path.realpath(name)
    with _open_table(path, where) as handle:
        try:
            frame = pd.read_csv(handle) if fmt == "csv" else pd.read_parquet(handle)
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
    _check_values(features, frame[target], target, path, where, fmt)
    y = frame[target].to_numpy()
    if len(np.unique(y.astype(str))) < 2:
        raise DatasetError(f"{where}: target column {target!r} of {path} has only one class")
    return features.to_numpy(dtype=np.float64), y


def _open_table(path: str, where: str):
    """The file opened once, then checked through its descriptor (what is checked is what is read)."""
    try:  # O_NONBLOCK: a FIFO cannot hang the open
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise DatasetError(f"{where}: file not found: {path}") from None
    except OSError as exc:
        raise DatasetError(f"{where}: cannot open {path}: {exc.strerror}") from None
    info = os.fstat(fd)
    problem = ("is a directory" if stat.S_ISDIR(info.st_mode) else
               "is not a regular file (a FIFO, socket or device)" if not stat.S_ISREG(info.st_mode) else
               "is empty (or not a stored file, as under /proc)" if info.st_size == 0 else
               f"is larger than {MAX_TABLE_BYTES // 2**20} MiB" if info.st_size > MAX_TABLE_BYTES else "")
    if problem:
        os.close(fd)
        raise DatasetError(f"{where}: {path} {problem}")
    return os.fdopen(fd, "rb")


def _check_values(features, labels, target: str, path: str, where: str, fmt: str) -> None:
    """The first value that cannot be a feature (or a missing label), named by column and row."""
    import pandas as pd

    def _row(i: int) -> str:
        return f"row {i + 1} (line {i + 2})" if fmt == "csv" else f"row {i + 1}"

    for column in features.columns:
        raw = features[column]
        numbers = pd.to_numeric(raw, errors="coerce") if not pd.api.types.is_numeric_dtype(raw) else raw
        numbers = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.flatnonzero(~np.isfinite(numbers) | (np.abs(numbers) > FLOAT32_MAX))
        if bad.size:
            i = int(bad[0])
            value = raw.iloc[i]
            why = ("is missing" if pd.isna(value) else
                   f"{str(value)[:40]!r} is not a number" if not pd.api.types.is_number(value) else
                   f"{value} is not a finite number" if not np.isfinite(numbers[i]) else
                   f"{value} is too large (features are trained in float32)")
            raise DatasetError(f"{where}: {path}: column {str(column)!r}, {_row(i)}: {why}")
    missing = np.flatnonzero(labels.isna().to_numpy())
    if missing.size:
        raise DatasetError(f"{where}: {path}: target column {target!r}, {_row(int(missing[0]))}: is missing")
