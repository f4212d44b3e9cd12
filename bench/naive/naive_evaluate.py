"""The naive path, written the way a straightforward first implementation would be.

It is a fair baseline, not a strawman: same datasets, model, optimiser, batch size, one pass,
the same static validation and loader, the same win-rate rule. What it lacks is what
mlr-mlflow adds: stacking models, one fit for many, cached baselines, a long-lived worker
and batched logging.
"""
from __future__ import annotations

import argparse
import logging
import warnings

import lightning.pytorch as pl
import mlflow
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlr_mlflow.config import Config, with_overrides
from mlr_mlflow.evaluate.baselines import references
from mlr_mlflow.evaluate.datasets import load_suite
from mlr_mlflow.evaluate.winrate import summarize
from mlr_mlflow.hypothesis import load_function
from mlr_mlflow.kinds import get_kind
from mlr_mlflow.validate import check_static


class Lambda(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


class MLP(pl.LightningModule):
    def __init__(self, n_in: int, n_out: int, hidden, activation, lr: float):
        super().__init__()
        dims, layers = [n_in, *hidden], []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), Lambda(activation)]
        self.net = nn.Sequential(*layers, nn.Linear(dims[-1], n_out))
        self.lr = lr

    def training_step(self, batch, _):
        x, y = batch
        return nn.functional.cross_entropy(self.net(x), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def train_one(activation, ds, seed: int, config: Config) -> dict:
    torch.manual_seed(seed)
    model = MLP(ds.X_train.shape[1], ds.n_classes, config.model.hidden, activation, config.model.lr)
    data = TensorDataset(torch.from_numpy(ds.X_train).float(), torch.from_numpy(ds.y_train).long())
    loader = DataLoader(data, batch_size=config.model.batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", devices=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
    trainer.fit(model, loader)
    out = {}
    with torch.no_grad():  # validation (what selection uses) and test (what is reported)
        for split, X, y in (("val", ds.X_val, ds.y_val), ("test", ds.X_test, ds.y_test)):
            logits = model.net(torch.from_numpy(X).float())
            y = torch.from_numpy(y).long()
            out.update({f"{split}_acc": float((logits.argmax(1) == y).float().mean()),
                        f"{split}_loss": float(nn.functional.cross_entropy(logits, y)),
                        f"n_{split}": len(y)})
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("hypothesis")
    parser.add_argument("--kind", default="activation")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--datasets", default="")
    args = parser.parse_args()
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    config = Config()
    if args.datasets:
        config = with_overrides(config, suite={"datasets": tuple(args.datasets.split(","))})
    source = open(args.hypothesis).read()
    reasons = check_static(source, get_kind(args.kind))
    if reasons:
        raise SystemExit(f"invalid: {reasons}")
    suite = load_suite(config.suite)
    baselines, sota = references(args.kind, config)
    components = {"hypothesis": source, **baselines, **sota}
    results = {}
    for name, src in components.items():  # baselines retrained for every hypothesis
        fn = load_function(src, args.kind)
        results[name] = {ds.name: {s: train_one(fn, ds, s, config) for s in range(args.seeds)}
                         for ds in suite}
    summary = summarize(results["hypothesis"], {n: results[n] for n in baselines},
                        {n: results[n] for n in sota}, config.compare.loss_tol)
    mlflow.log_param("kind", args.kind)
    mlflow.log_param("seeds", args.seeds)
    mlflow.log_text(source, "hypothesis.py")
    mlflow.log_metric("b_wr", summary["b_wr"])
    mlflow.log_metric("bsota_wr", summary["bsota_wr"])
    for ds, metrics in summary["datasets"].items():
        for key, value in metrics.items():
            mlflow.log_metric(f"{ds}.{key}", value)


if __name__ == "__main__":
    main()
