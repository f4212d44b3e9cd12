"""The training job: the sandbox target that trains many models in one Lightning fit.

Payload (built by `mlr_mlflow.evaluate.evaluator`):
    datasets: [Dataset.payload()] (an image or sequence task's adds "family" and "input_shape"),
    models: [{"key", "seed", "components": {kind: source}}],
    model: ModelConfig fields, variant: "one-pass" | "full",
    budget_s (optional): seconds of hypothesis code each model may run before it alone fails,
    grouped (optional, default true): stacked calls of row-independent functions (`calls`).
Answer (JSON): {"results": {key: {dataset: {"test_acc", "test_loss", "n_test", "val_acc",
                "val_loss", "n_val", "epochs"}}}, "errors": {key: reason}}.
The validation metrics are what a round selects on; the test metrics are only reported.
"""
from __future__ import annotations

import logging
import math
import warnings

TRAIN_TARGET = "mlr_mlflow.evaluate.training.job:train"
SANDBOX_PRELOAD = ("torch", "lightning.pytorch")  # imported once in the warm sandbox server


def _quiet_lightning() -> None:
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="lightning")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")


def _preprocess(fn, ds: dict):
    """Apply a preprocessing function the CONTRACT way: statistics from X_train only.

    Validation and test rows go through the `X_test` argument together; a copy is passed so that
    the hypothesis cannot alter the shared data. Then the contract is checked on this real split
    (`kinds.preprocessing.check_test_rows`): called again with half of these rows moved and the
    rest replaced by training rows, the training rows' output and each kept row's output must not
    change. The probe's inputs are synthetic; a function that recognises them (by shape, say) is
    caught here. The second call's output is not used, so results are those of the first call.
    """
    import zlib

    import numpy as np

    from ...kinds.preprocessing import check_test_rows

    rest = np.vstack([ds["X_val"], ds["X_test"]])
    out = fn(ds["X_train"].copy(), rest.copy())
    A, B = np.asarray(out[0], dtype=np.float32), np.asarray(out[1], dtype=np.float32)
    n_train, n_val = len(ds["X_train"]), len(ds["X_val"])
    if A.ndim != 2 or B.ndim != 2 or A.shape[0] != n_train or B.shape[0] != len(rest) \
            or A.shape[1] != B.shape[1]:
        raise ValueError(f"preprocess returned shapes {A.shape} and {B.shape} on {ds['name']}")
    if not (np.isfinite(A).all() and np.isfinite(B).all()):
        raise ValueError(f"preprocess returned NaN or inf on {ds['name']}")
    others = np.resize(ds["X_train"][::-1], rest.shape)  # training rows, in the test rows' places
    reasons = check_test_rows(fn, ds["X_train"].copy(), rest, others, np.asarray(out[0], np.float64),
                              np.asarray(out[1], np.float64), zlib.crc32(ds["name"].encode()),
                              f" on {ds['name']}")
    if reasons:
        raise ValueError(reasons[0])
    return A, B[:n_val], B[n_val:]


def _build_groups(payload: dict, load, guard):
    """GroupSpecs per dataset and input width. Preprocessing is hypothesis code too: it runs under
    the guard, on the budget of the first model that uses it, and a failure (or an overrun) fails
    every model that shares that preprocessing; the guard's `errors` says why."""
    import torch

    from .model import GroupSpec

    models, specs = payload["models"], []
    for ds in payload["datasets"]:
        if ds.get("family", "mlp") != "mlp":
            specs += _family_groups(ds, models, load, guard)
            continue
        variants: dict[str, tuple] = {}  # preprocessing source -> (X_train, X_val, X_test)
        failed: dict[str, str] = {}  # preprocessing source -> the reason it failed
        members: dict[int, list[dict]] = {}  # input width -> models
        for m in models:
            src, key = m["components"]["preprocessing"], m["key"]
            if key in guard.errors:
                continue
            if src in failed:
                guard.errors[key] = failed[src]
                continue
            if src not in variants:
                arrays = guard.call(key, lambda: _preprocess(load(src, "preprocessing"), ds))
                if arrays is None:
                    failed[src] = guard.errors[key]
                    continue
                variants[src] = tuple(torch.from_numpy(a) for a in arrays)
            own = ("activation", "regularizer")
            if guard.call(key, lambda: [load(m["components"][k], k) for k in own]) is None:
                continue
            members.setdefault(variants[src][0].shape[1], []).append(m)
        labels = [torch.from_numpy(ds[k]).long() for k in ("y_train", "y_val", "y_test")]
        for width, group in members.items():
            srcs = list(dict.fromkeys(m["components"]["preprocessing"] for m in group))
            stacked = [torch.stack([variants[s][i] for s in srcs]) for i in range(3)]
            specs.append(GroupSpec(
                dataset=ds["name"], X_train=stacked[0], y_train=labels[0], X_val=stacked[1],
                y_val=labels[1], X_test=stacked[2], y_test=labels[2], n_classes=int(ds["n_classes"]),
                keys=[m["key"] for m in group],
                pindex=[srcs.index(m["components"]["preprocessing"]) for m in group],
                seeds=[m["seed"] for m in group],
                activations=[load(m["components"]["activation"], "activation") for m in group],
                regularizers=[load(m["components"]["regularizer"], "regularizer") for m in group]))
    return specs


def _family_groups(ds: dict, models: list[dict], load, guard):
    """One GroupSpec of every model on an image or sequence task. These families have no
    preprocessing slot: rows go in as stored (the evaluator refuses the kind before anything runs;
    a model that brings a preprocessing anyway fails alone)."""
    import torch

    from ...kinds import get_kind
    from .model import GroupSpec

    pre = get_kind("preprocessing")
    unused = {pre.component(pre.default), pre.component("none")}  # the slot is absent: never applied
    group = []
    for m in models:
        key = m["key"]
        if key in guard.errors:
            continue
        if m["components"]["preprocessing"] not in unused:
            guard.errors[key] = f"preprocessing does not apply to the {ds['family']} task {ds['name']}"
            continue
        own = ("activation", "regularizer")
        if guard.call(key, lambda: [load(m["components"][k], k) for k in own]) is not None:
            group.append(m)
    if not group:
        return []
    X = [torch.from_numpy(ds[k]).float().unsqueeze(0) for k in ("X_train", "X_val", "X_test")]
    y = [torch.from_numpy(ds[k]).long() for k in ("y_train", "y_val", "y_test")]
    return [GroupSpec(
        dataset=ds["name"], X_train=X[0], y_train=y[0], X_val=X[1], y_val=y[1], X_test=X[2], y_test=y[2],
        n_classes=int(ds["n_classes"]), keys=[m["key"] for m in group], pindex=[0] * len(group),
        seeds=[m["seed"] for m in group],
        activations=[load(m["components"]["activation"], "activation") for m in group],
        regularizers=[load(m["components"]["regularizer"], "regularizer") for m in group],
        family=ds["family"], input_shape=tuple(ds["input_shape"]))]


def train(payload: dict) -> dict:
    """Sandbox target. Loads every component through the restricted loader, then fits once."""
    import lightning.pytorch as pl
    import torch

    from ...kinds import get_kind
    from ...validate.dynamic import probe_seed
    from ...validate.loader import load_checked
    from .calls import Recorded
    from .model import EnsembleModule, Guard

    torch.set_num_threads(1)
    _quiet_lightning()
    cache: dict[tuple[str, str], Recorded] = {}

    def load(source: str, kind: str):
        if (source, kind) not in cache:
            cache[(source, kind)] = Recorded(load_checked(source, kind), get_kind(kind).function,
                                             probe_seed(source))
        return cache[(source, kind)]

    guard = Guard(payload.get("budget_s") or math.inf)
    results: dict[str, dict] = {}
    with guard.timer():
        specs = _build_groups(payload, load, guard)
    errors = dict(guard.errors)
    if not specs:
        return {"results": results, "errors": errors}
    cfg = payload["model"]
    full = payload["variant"] == "full"
    max_epochs = cfg["max_epochs"] if full else 1
    patience = cfg["patience"] if full else None
    # one-pass trains at its own rate where the config resolved one (config.ModelConfig.for_kind)
    lr = cfg["lr"] if full or cfg.get("one_pass_lr") is None else cfg["one_pass_lr"]
    mlps = [s for s in specs if s.family == "mlp"]
    others = [s for s in specs if s.family != "mlp"]
    modules = []
    if mlps:
        modules.append(EnsembleModule(mlps, tuple(cfg["hidden"]), lr, cfg["batch_size"],
                                      patience=patience, guard=guard,
                                      grouped=payload.get("grouped", True)))
    if others:  # image and sequence families: their own fit (imported only when a task needs them)
        from .families.ensemble import FamilyEnsembleModule

        modules.append(FamilyEnsembleModule(others, lr, cfg["batch_size"], patience=patience,
                                            guard=guard))
    for module in modules:
        _fit(pl, module, full, max_epochs, guard)
    with guard.timer():
        _recheck(cache, payload["models"], guard)
    errors.update(guard.errors)
    for module in modules:
        for i, group in enumerate(module.groups):
            epochs = module.epochs_trained(i, max_epochs)
            for j, key in enumerate(group.spec.keys):
                if key in errors:
                    continue
                out = {"epochs": epochs[j]}
                for split, (acc, loss), y in (("test", module.tested[i], group.spec.y_test),
                                              ("val", module.validated[i], group.spec.y_val)):
                    out.update({f"{split}_acc": float(acc[j]), f"n_{split}": int(y.shape[0]),
                                f"{split}_loss": float(loss[j]) if math.isfinite(loss[j]) else None})
                results.setdefault(key, {})[group.spec.dataset] = out
    return {"results": results, "errors": errors}


def _recheck(cache: dict, models: list[dict], guard) -> None:
    """Every function called again on two inputs it met (`calls.Recorded`): one that answers
    otherwise now fails the models that use it, with the reason."""
    for (source, kind), fn in cache.items():
        keys = [m["key"] for m in models
                if m["components"].get(kind) == source and m["key"] not in guard.errors]
        if keys and fn.calls:
            guard.call_group(keys, fn.recheck, check=lambda problem: problem)


def _fit(pl, module, full: bool, max_epochs: int, guard) -> None:
    """One Lightning fit of a module's groups, then its test and validation scores (kept on it)."""
    trainer = pl.Trainer(max_epochs=max_epochs, accelerator="cpu", devices=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0)
    with guard.timer():
        trainer.fit(module, train_dataloaders=[0])  # one Lightning step per epoch (epochs.EpochSteps)
        if full:
            module.restore_best()
        module.tested, module.validated = module.evaluate_split("test"), module.evaluate_split("val")
