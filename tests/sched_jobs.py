"""Custom job functions for the scheduler tests (a schedule names them as module:function)."""
from pathlib import Path


def append(path: str, text: str = "ran") -> dict:
    with open(path, "a") as fh:
        fh.write(text + "\n")
    return {"lines": len(Path(path).read_text().splitlines())}


def explode() -> dict:
    raise RuntimeError("the job failed on purpose")
