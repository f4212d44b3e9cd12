"""Which cheap rung predicts full training best, and which one reverses fewest orderings full
training shows? Trains the activation panel again under cheap rungs of one's choosing and measures
each against the full training a recorded `suite check` kept.

    python bench/screen_rungs.py --from RUN_ID [--tracking-uri URI] [--config FILE] \\
        [--rungs one-pass,one-pass:lr=0.02,epochs=2] [--margins 0.25,0.15] [--json] [--out DIR]

`--from` names a suite check run that kept its per-model results (`suite_check_results.json`); its
full-training results on seed sets A and B are the truth, its config (`--config`, the same suite and
`first_seed`) the suite. A rung is `one-pass` (one epoch, no validation: the cheap rung, at the
config's one-pass learning rate), `epochs=K` (K epochs, the best validation epoch kept, no early stop
before K), either with `:lr=X` (for one-pass, `[model] one_pass_lr`; for K epochs, `lr`) and/or
`:batch_size=N`, overrides for that rung only. For each rung and each validation statistic
(evaluate/reliability.py):

- agreement: Spearman of the statistic on one seed set against full-training B-WR (and BSOTA-WR)
  on the other, the mean of A->B and B->A, over all members, the non-degenerate ones and the
  ReLU-like ones (what `suite check` calls `cheap_agreement`);
- the order check (suite_check/measure.py) at each margin: how many of the pairs full training
  orders by at least that margin on both seed sets the statistic (pooled over both sets) reverses,
  and how many of those it reverses on each set alone (systematic, not seed noise);
- the rung's training seconds, which is what a round pays for it.

The rung `one-pass` reproduces the check's own one-pass numbers (the same seeds, the same code and
one-pass learning rate) on the same kind of CPU, so it is what every other rung is read against.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

VAL_STATISTICS = ("val_b_wr", "val_bsota_wr", "val_loss_wr", "val_log_loss_ratio")
TRUTHS = ("b_wr", "bsota_wr")


def parse_rung(text: str) -> tuple[str, dict, str]:
    """'epochs=2:lr=0.02' -> (variant, [model] overrides, label)."""
    parts = [p for p in text.strip().split(":") if p]
    if not parts:
        raise ValueError("an empty rung")
    head, overrides = parts[0], {}
    if head == "one-pass":
        variant, lr_key = "one-pass", "one_pass_lr"
    elif head.startswith("epochs="):
        k = int(head.split("=", 1)[1])
        if k < 1:
            raise ValueError(f"{text}: epochs must be at least 1")
        variant, lr_key = "full", "lr"
        overrides.update(max_epochs=k, patience=k)
    else:
        raise ValueError(f"{text}: a rung starts with one-pass or epochs=K")
    for p in parts[1:]:
        key, _, value = p.partition("=")
        if key == "lr":
            overrides[lr_key] = float(value)
        elif key == "batch_size":
            overrides["batch_size"] = int(value)
        else:
            raise ValueError(f"{text}: unknown override {key!r} (lr, batch_size)")
    return variant, overrides, text.strip()


def measure_rung(panel, refs, members, truth_a, truth_b, seeds_a, seeds_b, loss_tol, metric, margins):
    from mlr_mlflow.suite_check.measure import _mean, _rho, groups, order_check, statistics

    one_a = statistics(panel, refs, seeds_a, loss_tol, metric)
    one_b = statistics(panel, refs, seeds_b, loss_tol, metric)
    pooled = statistics(panel, refs, list(seeds_a) + list(seeds_b), loss_tol, metric)
    sets = groups(members)
    out = {}
    for name in VAL_STATISTICS:
        agreement = {t: {g: round(_mean([_rho(one_a[name], truth_b[t], names),
                                         _rho(one_b[name], truth_a[t], names)]), 4)
                         for g, names in sets.items()} for t in TRUTHS}
        ceiling = {g: round(_rho(one_a[name], one_b[name], names), 4) for g, names in sets.items()}
        orders = {}
        for margin in margins:
            check = order_check(truth_a, truth_b, pooled, members, name, (one_a, one_b), margin=margin)
            orders[str(margin)] = {"pairs": check["pairs_checked"], "inversions": len(check["inversions"]),
                                   "on_both_sets": check["inversions_on_both_sets"],
                                   "reversed": [f"{i['higher']} > {i['lower']}" for i in check["inversions"]]}
        out[name] = {"agreement": agreement, "ceiling": ceiling, "orders": orders,
                     "by_member": {m: round(v, 4) for m, v in pooled[name].items()}}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--from", dest="run_id", required=True, help="a suite check run that kept its results")
    ap.add_argument("--tracking-uri", default=None)
    ap.add_argument("--config", default=None, help="the config the check ran with (its suite, first_seed)")
    ap.add_argument("--rungs", default="one-pass,epochs=2,one-pass:lr=0.02,one-pass:batch_size=4")
    ap.add_argument("--margins", default="0.25,0.15,0.1")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out", default=None, help="write screen_rungs.json here as each rung finishes")
    args = ap.parse_args(argv)

    from mlr_mlflow.commands import _config, for_kind
    from mlr_mlflow.config import with_overrides
    from mlr_mlflow.evaluate.datasets import check_suite
    from mlr_mlflow.suite_check import kept_results, panel_members
    from mlr_mlflow.suite_check.measure import statistics
    from mlr_mlflow.suite_check.training import train_rung
    from mlr_mlflow.tracking import connect

    kind = "activation"
    config = for_kind(_config(args.config), kind)
    suite = check_suite(config.suite, kind)
    client = connect(args.tracking_uri)
    raw = kept_results(client, args.run_id)
    members = panel_members(kind, raw["members"])
    seeds_a, seeds_b = raw["seeds_a"], raw["seeds_b"]
    loss_tol, metric = config.compare.loss_tol, config.compare.metric
    full = raw["rungs"]["full"]
    full_refs = (full["baselines"], full["sota"])
    truth_a = statistics(full["panel"], full_refs, seeds_a, loss_tol, metric)
    truth_b = statistics(full["panel"], full_refs, seeds_b, loss_tol, metric)
    margins = [float(m) for m in args.margins.split(",") if m]
    result = {"run_id": args.run_id, "seeds_a": seeds_a, "seeds_b": seeds_b,
              "members": len(members), "rungs": {}}
    for text in [r for r in args.rungs.split(",") if r.strip()]:
        variant, overrides, label = parse_rung(text)
        rung_config = with_overrides(config, model=overrides)
        start = time.monotonic()
        panel, refs, errors = train_rung(rung_config, kind, suite, members, seeds_a + seeds_b, variant,
                                         progress=lambda line: print(line, file=sys.stderr, flush=True))
        seconds = time.monotonic() - start
        kept = [m for m in members if m.name in panel]
        entry = measure_rung(panel, refs, kept, truth_a, truth_b, seeds_a, seeds_b, loss_tol, metric, margins)
        result["rungs"][label] = {"variant": variant, "model": overrides, "train_s": round(seconds, 1),
                                  "errors": errors, "statistics": entry}
        screen = entry["val_bsota_wr"]
        print(f"{label}: {seconds:.0f} s; val_bsota_wr vs full B-WR (non-degenerate) "
              f"{screen['agreement']['b_wr'].get('non_degenerate')}, inversions "
              + ", ".join(f"{m}: {o['inversions']}/{o['pairs']} ({o['on_both_sets']} on both sets)"
                          for m, o in screen["orders"].items()), file=sys.stderr, flush=True)
        if args.out:
            Path(args.out).mkdir(parents=True, exist_ok=True)
            (Path(args.out) / "screen_rungs.json").write_text(json.dumps(result, indent=1))
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        for label, r in result["rungs"].items():
            print(f"## {label} ({r['train_s']} s)")
            for name, s in r["statistics"].items():
                print(f"  {name}: vs full B-WR {s['agreement']['b_wr']}, ceiling {s['ceiling']}, "
                      + "; ".join(f"margin {m}: {o['inversions']}/{o['pairs']}" for m, o in s["orders"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
