"""How the training job calls hypothesis code: guarded, and grouped where that changes nothing.

`Guard` charges every call of hypothesis code to the models it serves and fails only those models.
`Caller` is one distinct function (one source) and the models that use it. A caller whose probe
shows that it treats rows independently (elementwise, or row-wise like a per-row normalisation) is
called once per layer and step with the rows of all its running models stacked, across seeds and
datasets; any other function is called once per model, on that model's rows only, as before.
Grouping is decided by the function alone, so a model's calls are the same in any batch.
"""
from __future__ import annotations

import math
import random
import time
from contextlib import nullcontext
from typing import Callable

import torch

from ...kinds.base import not_deterministic, same_output
from ...sandbox.alarm import Alarm, Overtime

# Row counts of the independence probe: the small batch sizes (a last, short batch included), so a
# function that branches on its row count meets the counts a per-model call would give it.
PROBE_CHUNKS = (1, 2, 3, 5, 8, 4, 7, 6, 16)


class Guard:
    """Calls hypothesis code on behalf of models, inside the training job.

    An exception, a malformed result or a spent time budget fails only the models the call served:
    their keys go to `errors`, and from then on they get a neutral stand-in, so every other model
    trains on unharmed (models never share parameters, gradients or optimizer state). Time is
    counted per model over the whole job; a grouped call is charged in equal shares to its models.
    Within `timer()`, the workers' one time limit (`sandbox.alarm`) also interrupts a single call
    that outlives its budget; its deadline is set only while hypothesis code runs. A call that no
    signal interrupts (one long call in C) is killed from outside with the whole job, which then
    fails naming the keys of that call (`sandbox.SandboxOvertime.culprit`): the evaluator retries
    the others without them.
    """

    TICK_S = 0.2

    def __init__(self, budget_s: float = math.inf):
        self.budget_s = budget_s
        self.spent: dict[str, float] = {}
        self.errors: dict[str, str] = {}
        self.alarm = Alarm(self.TICK_S)

    def overrun(self) -> str:
        """The reason a model fails on its time budget (naming the setting)."""
        return (f"its code ran longer than its training time budget of {self.budget_s:g} s "
                f"([sandbox] hypothesis_budget_s)")

    def timer(self):
        """Arm the interrupting tick for the duration (main thread only; elsewhere, counting only)."""
        return self.alarm if math.isfinite(self.budget_s) else nullcontext()

    def call(self, key: str, fn: Callable, check: Callable | None = None):
        """fn(), checked by check(result) -> problem or None; None when the model has failed."""
        if key in self.errors:
            return None
        return self.call_group([key], fn, check)

    def call_group(self, keys: list[str], fn: Callable, check: Callable | None = None,
                   fail_on_error: bool = True):
        """fn() on behalf of `keys` (all running); None when it failed. An exception or a bad result
        fails every key (they ran the same code on their own rows), unless `fail_on_error` is
        False (a probe); a spent budget fails each key whose own total ran over."""
        start = time.perf_counter()
        share = len(keys)
        left = max(self.budget_s - self.spent.get(k, 0.0) for k in keys)
        problem = None
        try:
            # also enforced from outside (the worker server kills a call that no tick reaches, a
            # long call in C): then the whole job ends, naming `keys` and the limit
            self.alarm.set(start + left * share, self.overrun(), keys)
            result = fn()
            self.alarm.deadline = None
            if check is not None:
                problem = check(result)
        except Overtime:
            result = None  # reported below, from the clock
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc}"
        finally:
            self.alarm.deadline = None
            elapsed = (time.perf_counter() - start) / share
            for k in keys:
                self.spent[k] = self.spent.get(k, 0.0) + elapsed
        over = [k for k in keys if self.spent[k] > self.budget_s]
        for k in over:
            self.errors[k] = self.overrun()
        if problem is not None and fail_on_error:
            for k in keys:
                self.errors.setdefault(k, problem[:500])
        return None if problem is not None or over else result


def check_activation(x: torch.Tensor, y) -> str | None:
    if not isinstance(y, torch.Tensor):
        return f"activation returned {type(y).__name__}, not a tensor"
    if y.shape != x.shape or y.dtype != x.dtype:
        return f"activation returned shape {list(y.shape)} ({y.dtype}) for input {list(x.shape)}"
    return None


def check_penalty(value) -> str | None:
    """A regularizer's value in training: a penalty that turns NaN or inf makes the model's loss
    NaN, which is a broken hypothesis (invalid, with this reason), not an evaluated one."""
    if not torch.isfinite(value).all():
        return "regularizer returned NaN or inf during training"
    return None


def _held(value, copy: bool):
    """What a recorded call keeps: tensors detached (by reference: no code writes them later),
    numpy arrays copied (preprocessing may write into its inputs), containers element-wise."""
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, (tuple, list)):
        return type(value)(_held(v, copy) for v in value)
    if copy and hasattr(value, "copy"):
        return value.copy()
    return value


class Recorded:
    """A hypothesis function as the training job calls it, remembering two of its calls: the
    first and one drawn uniformly among all the others (reservoir sampling from `seed`, so an
    audit sees the same draw and the code cannot know which). `recheck()` calls it again on
    those inputs once training is over: a function that keeps state between calls (behaving one
    way while probed and another in training) gives another output, and its models fail. The
    extra calls come after every result is computed, so they change no result."""

    def __init__(self, fn: Callable, name: str, seed: int):
        self.fn, self.name = fn, name
        self.calls = 0
        self.kept: dict[str, tuple] = {}
        self._rng = random.Random(seed)

    def __call__(self, *args):
        result = self.fn(*args)
        self.calls += 1
        if self.calls == 1 or self._rng.random() * (self.calls - 1) < 1:
            copy = not isinstance(result, torch.Tensor)
            self.kept["first" if self.calls == 1 else "drawn"] = (
                self.calls, _held(args, copy), _held(result, copy), torch.is_grad_enabled())
        return result

    def recheck(self) -> str | None:
        """None when every kept call gives the same output again; else the reason."""
        for number, args, result, grad in list(self.kept.values()):
            again = tuple(_held(a, True) if not isinstance(a, torch.Tensor) else a.clone()
                          for a in args)
            with torch.set_grad_enabled(grad):
                if not same_output(self.fn(*again), result):
                    return not_deterministic(self.name, self.calls - number)
        return None


def rows_independent(fn: Callable, width: int) -> bool:
    """True when fn on stacked rows gives exactly, bit for bit, the rows fn gives each chunk alone,
    values and gradients, for the chunk sizes of PROBE_CHUNKS at this hidden width."""
    gen = torch.Generator().manual_seed(width)
    leaf = (torch.randn(sum(PROBE_CHUNKS), width, generator=gen) * 2).requires_grad_(True)
    upstream = torch.randn(leaf.shape, generator=gen)
    whole = leaf * 1.0
    y = fn(whole)
    if check_activation(whole, y) is not None:
        return False
    (grad,) = torch.autograd.grad(y, leaf, upstream, allow_unused=True)
    pieces = [fn(part * 1.0) for part in leaf.split(PROBE_CHUNKS)]
    if any(check_activation(p, q) is not None for p, q in zip(leaf.split(PROBE_CHUNKS), pieces)):
        return False
    alone = torch.cat(pieces)
    (grad_alone,) = torch.autograd.grad(alone, leaf, upstream, allow_unused=True)
    if grad is None or grad_alone is None:
        return False
    return torch.equal(y.detach(), alone.detach()) and torch.equal(grad, grad_alone)


def constant_regularizer(fn: Callable, shapes: list[tuple[int, ...]]) -> bool:
    """True when the regularizer ignores the weights: the same value without a gradient for two
    different weight sets (the default `none` is the common case). It is then called once a step
    for all its models instead of once per model."""
    gen = torch.Generator().manual_seed(1)
    values = []
    for _ in range(2):
        params = [torch.randn(s, generator=gen).requires_grad_(True) for s in shapes]
        value = torch.as_tensor(fn(params))
        if value.requires_grad or value.numel() != 1:
            return False
        values.append(value.reshape(()).to(torch.float32))
    return torch.equal(values[0], values[1])


class Caller:
    """One distinct function and the models (group index, model index, key) that use it."""

    def __init__(self, fn: Callable):
        self.fn = fn
        self.members: list[tuple[int, int, str]] = []
        self.grouped: dict[int, bool] = {}  # hidden width -> stacked calls allowed

    def probe_activation(self, guard: Guard, widths: set[int], enabled: bool) -> None:
        for width in widths:
            ok = enabled and guard.call_group([k for _, _, k in self.members],
                                              lambda: rows_independent(self.fn, width),
                                              fail_on_error=False)
            self.grouped[width] = bool(ok)

    def probe_regularizer(self, guard: Guard, shapes: list[tuple[int, ...]], enabled: bool) -> None:
        ok = enabled and guard.call_group([k for _, _, k in self.members],
                                          lambda: constant_regularizer(self.fn, shapes),
                                          fail_on_error=False)
        self.grouped[0] = bool(ok)


def callers(functions: list[list[Callable]], keys: list[list[str]]) -> list[Caller]:
    """Callers by function identity (the job's loader caches one function per source)."""
    found: dict[int, Caller] = {}
    for g, (fns, ks) in enumerate(zip(functions, keys)):
        for m, (fn, key) in enumerate(zip(fns, ks)):
            found.setdefault(id(fn), Caller(fn)).members.append((g, m, key))
    return list(found.values())
