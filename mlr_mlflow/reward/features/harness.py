"""One harness for what is measured of hypothesis code in the sandbox (never here): the reward
model's `grid` and `probes` features and the behavioural fingerprints of `fingerprint`.

A measurement is a sandbox target (each feature module keeps its own, with its warm-up) that runs
`measure_sources` with its measuring function, and a caller that runs `measure_rows`. One policy
for all of them:
- a source that fails the static checks is never run: its row is None (failed);
- each source is one sandbox call of its own (on a warm server: a fork per row), with its own time
  limit: a row that runs out of time, in Python (the tick) or in one long call in C (the worker
  server kills it, `SandboxOvertime`), or after the request's time budget ran out, is *unmeasured*:
  row None and the reason, never a guessed or partial value. A longer source than
  `limits.max_code_chars` is unmeasured too;
- a row whose code fails (or whose measuring function refuses it) is measured: failing is what it
  does, every time; its row is None;
- a value that is not finite is None in its row;
- the sandbox failing is not a hypothesis failing: when a row breaks its worker, `canary` (the
  kind's built-in default) is measured; if that fails too, `BehaviourError` is raised.
So no row's value depends on time or on the other rows. The synthetic input matrix that
preprocessing is measured on is `mixed_matrix`, for every measurement.
"""
from __future__ import annotations

import logging
import math
from contextlib import nullcontext
from typing import Callable

from ...validate.loader import load_checked  # here, so the warm sandbox server imports it once
from ..rows import (Budget, BehaviourError, ScoringLimits, request_reason,  # noqa: F401
                    row_reason)

log = logging.getLogger(__name__)

CALL_SLACK_S = 10.0  # the call's own wall clock past the row's limit: a fork, imports, the answer


def mixed_matrix(rng, rows: int):
    """The synthetic input of a preprocessing measurement: a normal, a skewed (log-normal) and a
    bounded column, the bounded one with an outlier in its first row; drawn from `rng`."""
    import numpy as np

    bounded = rng.uniform(0, 1, rows)
    bounded[0] = 25.0  # an outlier
    return np.stack([rng.normal(3, 2, rows), rng.lognormal(0, 1, rows), bounded], axis=1)


def measure_sources(payload: dict, measure: Callable[..., list[float]]) -> dict:
    """Sandbox side: {"kind", "sources", "timeout_s", "reason"} -> {"features": [[float | None] |
    None], "status": ["ok" | "failed" | "overtime"]}, each source loaded and measured by
    `measure(fn)` within its own `timeout_s` (None features: the code failed or ran out of time)."""
    import torch

    from ...sandbox.alarm import Overtime, time_limit

    torch.set_num_threads(1)
    out, status = [], []
    for source in payload["sources"]:
        try:
            with time_limit(payload.get("timeout_s", 5.0), reason=payload.get("reason")):
                values = measure(load_checked(source, payload["kind"]))
            out.append([v if math.isfinite(v) else None for v in values])
            status.append("ok")
        except Overtime:
            out.append(None)
            status.append("overtime")
        except Exception:
            out.append(None)
            status.append("failed")
    return {"features": out, "status": status}


def measure_rows(target: str, kind: str, sources: list[str], limits: ScoringLimits | None = None,
                 sandbox_config=None, budget: Budget | None = None, canary: str | None = None,
                 sandbox=None, limit: str = "reward limits.row_s"):
    """(rows, unmeasured): per source, its row from `target` (a list, None entries where a value
    was not finite; None when the code failed or fails the static checks) and None, or None and
    the reason it was not measured. `sandbox` is an open one to use, else a warm server of
    `sandbox_config` (this process's pool, kept between requests); `budget` bounds the request's
    measurements; `canary` must measure when a row broke its worker; `limit` names the row limit."""
    from ...kinds import get_kind
    from ...validate import check_static

    kind_ = get_kind(kind)
    clean = [s if not check_static(s, kind_) else None for s in sources]
    return _measure_each(target, kind, clean, limits or ScoringLimits(), sandbox_config, budget,
                         canary, sandbox, limit)


def as_matrix(rows: list, width: int):
    """[len(rows), width] float32, NaN where a row or a value is missing."""
    import numpy as np

    result = np.full((len(rows), width), np.nan, dtype=np.float32)
    for i, values in enumerate(rows):
        if values is not None:
            result[i] = [np.nan if v is None else v for v in values][:width]
    return result


def _measure_each(target: str, kind: str, sources: list[str | None], limits: ScoringLimits,
                  sandbox_config, budget: Budget | None, canary: str | None, given, limit: str):
    from ...config import SandboxConfig
    from ...sandbox import SandboxError, SandboxTimeout, warm_sandbox

    rows: list = [None] * len(sources)
    unmeasured: list[str | None] = [None] * len(sources)
    broke: list[str] = []

    def one(sandbox, source: str, timeout: float):
        payload = {"kind": kind, "sources": [source], "timeout_s": limits.row_s,
                   "reason": row_reason(limits)}
        answer = sandbox.call(target, payload, timeout=timeout, limit=limit)
        status = (answer.get("status") or ["ok"])[0]
        return answer["features"][0], status

    opened = nullcontext(given) if given is not None else warm_sandbox(sandbox_config or SandboxConfig())
    with opened as sandbox:
        for i, source in enumerate(sources):
            if source is None:
                continue
            if len(source) > limits.max_code_chars:
                unmeasured[i] = f"not measured: longer than {limits.max_code_chars} characters " \
                                "(reward limits.max_code_chars)"
                continue
            timeout = limits.row_s + CALL_SLACK_S
            if budget is not None:
                left = budget.left()
                if left <= 0:
                    unmeasured[i] = request_reason(limits)
                    continue
                timeout = min(timeout, left)
            try:
                values, status = one(sandbox, source, timeout)
            except SandboxTimeout as exc:  # a posted deadline (SandboxOvertime) or the call's clock
                if budget is not None:
                    budget.excuse(sandbox.warm_up_s)
                late = budget is not None and budget.left() <= 0
                unmeasured[i] = request_reason(limits) if late else row_reason(limits)
                log.info("a row was not measured: %s", exc.reason)
                continue
            except SandboxError as exc:  # it broke its worker: failed, once the canary measures
                broke.append(exc.reason)
                continue
            if budget is not None:  # a server's start is not the request's measuring time
                budget.excuse(sandbox.warm_up_s)
            if status == "overtime":
                unmeasured[i] = row_reason(limits)
            else:
                rows[i] = values
        if broke and canary is not None:
            try:
                one(sandbox, canary, limits.row_s + CALL_SLACK_S)
            except SandboxError as sick:
                raise BehaviourError(f"the sandbox cannot measure {kind} behaviour (it fails on the "
                                     f"built-in default too): {sick.reason}") from None
    if broke:
        log.warning("%d of %d hypotheses broke the sandbox (they are not measured: failed): %s",
                    len(broke), len(sources), broke[0])
    return rows, unmeasured
