"""A target that runs code with no restriction but the sandbox's own: for proving a backend.

The hostile-code tests send attacks here to show that the process layer holds by itself, as if the
static allow-list and the restricted loader had both been bypassed. Only trusted callers choose
targets; hypotheses never do.
"""
from __future__ import annotations

SELFTEST_TARGET = "mlr_mlflow.sandbox.selftest:exec_unrestricted"


def exec_unrestricted(payload: dict) -> dict:
    """Run payload["code"]; return the JSON-compatible `result` it leaves behind (or the error)."""
    namespace: dict = {}
    try:
        exec(payload["code"], namespace)
    except BaseException as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {"result": namespace.get("result")}
