"""The process on the other side of a sandbox: read requests, run targets, answer in JSON.

Requests arrive on stdin as length-prefixed pickles from the trusted parent. Answers go out on a
private duplicate of the original stdout; fd 1 itself is pointed at stderr so that anything a
hypothesis prints cannot corrupt the protocol.
"""
from __future__ import annotations

import importlib
import json
import os
import pickle
import struct
import sys
import traceback

HEADER = struct.Struct("!Q")


def _read_exact(stream, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _resolve(target: str):
    module, _, name = target.partition(":")
    if not module.startswith("mlr_mlflow."):
        raise ValueError(f"sandbox targets must live in mlr_mlflow, not {target!r}")
    return getattr(importlib.import_module(module), name)


def _answer(out, message: dict) -> None:
    body = json.dumps(message, allow_nan=True).encode()
    out.write(HEADER.pack(len(body)) + body)
    out.flush()


def main() -> None:
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    requests = sys.stdin.buffer
    while True:
        header = _read_exact(requests, HEADER.size)
        if header is None:
            return
        (size,) = HEADER.unpack(header)
        request = pickle.loads(_read_exact(requests, size))
        try:
            result = _resolve(request["target"])(request["payload"])
            message = {"ok": True, "result": result}
        except MemoryError:
            message = {"ok": False, "error": "out of memory (the sandbox memory limit was reached)"}
        except RecursionError:
            message = {"ok": False, "error": "maximum recursion depth exceeded"}
        except BaseException as exc:  # the target ran hostile code: report, never die silently
            message = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000],
                       "trace": traceback.format_exc(limit=-4)[-4000:]}
        _answer(out, message)


if __name__ == "__main__":
    main()
