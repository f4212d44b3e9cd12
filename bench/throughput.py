"""Throughput of one-pass evaluation: mlr-mlflow end to end, against a bare PyTorch loop and a naive path.

    python bench/throughput.py [--n 64] [--seeds 3] [--naive-sample 4] [--top-k 4] [--json]
    python bench/throughput.py --full-only      # only the full-training line (any version of the package)

Four ways to evaluate the same activation hypotheses (same datasets, seeds, model and one pass):

- mlr-mlflow: `Evaluator.evaluate` on a fresh sqlite store: runs, validation (static and
  sandboxed probes), the sandboxed worker started from nothing (lightning imported in it), one
  batched Lightning fit, win rates against cached baselines, MLflow logging. The baselines are
  trained once beforehand (their time is reported, not counted: every later round reuses them).
- bare torch: the same stacked models and per-model activation calls, in this process, with a
  plain Adam loop: no Lightning, tracking, sandbox, validation or process start. The "limit".
  Its test accuracies must equal mlr-mlflow's (reported as max_abs_diff_vs_bare).
- grouped floor: the training job's own grouped arithmetic (`EnsembleModule`: each function called
  once per layer and step on all its models' rows) driven by a plain Adam loop in this process: no
  Lightning, sandbox, validation, process start or tracking. `ratio_vs_grouped_floor` compares with it.
- naive: `bench/naive` as an MLflow Project, one `mlflow run` per hypothesis (env_manager=local),
  one Lightning Trainer per (component, dataset, seed), baselines retrained for every hypothesis,
  one logging call per value. It costs about half a minute per hypothesis, so by default it runs on
  an evenly spaced sample of the same hypotheses (`--naive-sample 0`: all of them); nothing is
  shared between its runs, so its per-hypothesis rate does not depend on how many it runs.

Then, unless `--task-lines 0`, one line per model family beyond the MLP: mlr-mlflow end to end on
a CNN task (digits as 8x8 images) and an attention task (sequence_match), on the first 16 hypotheses.
A last line times full training of a round's top-k (`--top-k`, evenly spaced among the same
hypotheses) through `Evaluator.evaluate(..., "full")`, after the full baselines are cached; it runs
against whatever version of the package sits next to this file, so today's and an older version's
times compare (`--full-only`).

The last line with --json is one JSON object (CONTRACT.md): hyp_per_min, ratio_vs_bare_torch,
ratio_vs_grouped_floor, ratio_vs_naive, full_topk_s, tracking_share and more. Figures and the machine go in docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

FORMS = [
    "x * torch.sigmoid({a} * x)",
    "torch.tanh({a} * x) + {b} * x",
    "F.softplus({a} * x) - {b}",
    "x * torch.tanh(F.softplus({a} * x))",
    "torch.where(x > 0, x, {b} * (torch.exp(x) - 1))",
    "x * (1 + torch.erf({a} * x)) / 2",
    "torch.maximum(x, {b} * x)",
    "x / (1 + torch.abs({a} * x))",
]


def hypotheses(n: int) -> list[str]:
    """n distinct activation functions: eight families with varying constants."""
    out = []
    for i in range(n):
        form, step = FORMS[i % len(FORMS)], i // len(FORMS)
        body = form.format(a=round(0.5 + 0.25 * step, 3), b=round(0.01 + 0.02 * step, 3))
        out.append(f"import torch\nimport torch.nn.functional as F\n\n\ndef activation(x):\n"
                   f"    return {body}\n")
    return out


def run_mlr(sources, seeds, config, suite, store: str):
    from mlr_mlflow.evaluate.training.dispatch import prewarm_training
    from mlr_mlflow.evaluate.evaluator import Evaluator
    from mlr_mlflow.hypothesis import Hypothesis
    from mlr_mlflow.tracking import connect

    client = connect(store)
    start = time.perf_counter()
    Evaluator(client, config, suite=suite).evaluate(
        [Hypothesis("activation", "def activation(x):\n    return x\n", "bench")], "one-pass", seeds)
    baselines_s = time.perf_counter() - start
    evaluator = Evaluator(client, config, suite=suite)
    # a warm process (a scheduler's, a second round's) has a server per share idle already
    processes = len(evaluator._shares(len(sources), "one-pass", list(range(seeds)), suite))
    for thread in prewarm_training(config, processes):
        thread.join()
    start = time.perf_counter()
    evaluations = evaluator.evaluate([Hypothesis("activation", s, "bench") for s in sources],
                                     "one-pass", seeds)
    wall = time.perf_counter() - start
    invalid = [e.reasons for e in evaluations if not e.valid]
    if invalid:
        raise SystemExit(f"benchmark hypotheses must all be valid: {invalid[:3]}")
    return wall, baselines_s, {**evaluator.timings, "processes": processes}, evaluations


# One task line per model family beyond the MLP (issue 17): mlr-mlflow end to end on that task alone.
FAMILY_TASKS = {"cnn": ("digits-cnn", "digits"), "attention": ("match-attention", "sequence_match")}


def run_task_lines(sources, seeds, workdir: Path) -> dict:
    """Per family: the same hypotheses evaluated one-pass on one task of that family (baselines
    trained once beforehand, not counted), in a store of its own."""
    from mlr_mlflow.config import Config, TaskConfig, with_overrides
    from mlr_mlflow.evaluate.datasets import load_suite

    lines = {}
    for family, (name, dataset) in FAMILY_TASKS.items():
        config = with_overrides(Config(), suite={"tasks": (TaskConfig(name, dataset, family),)})
        wall, baselines_s, _, _ = run_mlr(sources, seeds, config, load_suite(config.suite),
                                          f"sqlite:///{workdir}/{family}.db")
        lines[family] = {"task": name, "n": len(sources), "hyp_per_min": round(60 * len(sources) / wall, 2),
                         "wall_s": round(wall, 2), "baselines_once_s": round(baselines_s, 2)}
    return lines


def run_bare(sources, seeds, config, suite):
    """The same arithmetic as the training job, batched the same way, minus everything else."""
    import torch

    from mlr_mlflow.evaluate.baselines import components_for
    from mlr_mlflow.evaluate.training.job import _build_groups
    from mlr_mlflow.evaluate.training.model import Group, Guard
    from mlr_mlflow.hypothesis import load_function

    torch.set_num_threads(1)
    start = time.perf_counter()
    models = [{"key": f"{i}:{s}", "seed": s, "components": components_for("activation", src)}
              for i, src in enumerate(sources) for s in range(seeds)]
    guard = Guard()
    with guard.timer():
        specs = _build_groups({"datasets": [d.payload() for d in suite], "models": models},
                              load_function, guard)
    assert not guard.errors, guard.errors
    groups = torch.nn.ModuleList(Group(spec, config.model.hidden) for spec in specs)
    params = [p for g in groups for p in g.parameters()]
    optimizer = torch.optim.Adam(params, lr=config.model.one_pass_lr)  # one-pass, as the evaluator trains it

    def forward(g, x):
        last = len(g.weights) - 1
        for layer, (w, b) in enumerate(zip(g.weights, g.biases)):
            x = torch.baddbmm(b.unsqueeze(1), x, w)
            if layer < last:
                x = torch.stack([act(x[m]) for m, act in enumerate(g.spec.activations)])
        return x

    def penalties(g):
        return torch.stack([torch.as_tensor(reg([w[m].t() for w in g.weights]),
                                            dtype=torch.float32).reshape(())
                            for m, reg in enumerate(g.spec.regularizers)])

    batch = config.model.batch_size
    for g in groups:
        g.shuffle(0)
    for step in range(max(math.ceil(g.n_train / batch) for g in groups)):
        losses = []
        for g in groups:
            if step * batch >= g.n_train:
                continue
            idx = g.order[:, step * batch:(step + 1) * batch]
            logits = forward(g, g.spec.X_train[g.pindex.unsqueeze(1), idx])
            losses.append((g.per_model_loss(logits, g.spec.y_train[idx]) + penalties(g)).sum())
        optimizer.zero_grad()
        torch.stack(losses).sum().backward()
        optimizer.step()
    accuracy = {}
    with torch.no_grad():
        for g in groups:
            logits = forward(g, g.spec.X_test[g.pindex])
            acc = (logits.argmax(-1) == g.spec.y_test.unsqueeze(0)).float().mean(1)
            for key, a in zip(g.spec.keys, acc.tolist()):
                accuracy[(key, g.spec.dataset)] = a
    return time.perf_counter() - start, accuracy


def time_worker_start(config) -> float:
    """A cold start of the warm sandbox server (process, namespaces, torch and lightning imports):
    what the first evaluation call of a process pays once, and every later one does not."""
    from mlr_mlflow.sandbox import warm_sandbox
    from mlr_mlflow.sandbox.pool import close_idle

    close_idle()
    start = time.perf_counter()
    with warm_sandbox(config.sandbox) as sandbox:  # an empty job: imports, then nothing to train
        sandbox.call("mlr_mlflow.evaluate.training.job:train",
                     {"datasets": [], "models": [], "model": {}, "variant": "one-pass"}, 600)
    return time.perf_counter() - start


def run_grouped_floor(sources, seeds, config, suite):
    """The job's grouped arithmetic (EnsembleModule) in a plain loop: no Lightning, sandbox or tracking."""
    import torch

    from mlr_mlflow.evaluate.baselines import components_for
    from mlr_mlflow.evaluate.training.job import _build_groups
    from mlr_mlflow.evaluate.training.model import EnsembleModule, Guard
    from mlr_mlflow.hypothesis import load_function

    torch.set_num_threads(1)
    start = time.perf_counter()
    models = [{"key": f"{i}:{s}", "seed": s, "components": components_for("activation", src)}
              for i, src in enumerate(sources) for s in range(seeds)]
    cache = {}

    def load(source, kind):  # one function per source, as the job's loader gives
        return cache.setdefault((source, kind), load_function(source, kind))

    guard = Guard()
    specs = _build_groups({"datasets": [d.payload() for d in suite], "models": models}, load, guard)
    assert not guard.errors, guard.errors
    m = config.model
    module = EnsembleModule(specs, m.hidden, m.one_pass_lr, m.batch_size, guard=guard)
    module.plan_calls()
    optimizer = module.configure_optimizers()  # the fit's own optimizer
    module.on_train_epoch_start()
    for step in range(module.steps_per_epoch()):
        loss = module.step_loss(step)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    accuracy = {}
    for g, (acc, _) in zip(module.groups, module.evaluate_split("test")):
        for key, a in zip(g.spec.keys, acc.tolist()):
            accuracy[(key, g.spec.dataset)] = a
    return time.perf_counter() - start, accuracy


def run_full(sources, seeds, config, suite, store: str):
    """Full training of `sources` (a round's top-k) end to end, after the full baselines are cached."""
    from mlr_mlflow.evaluate.evaluator import Evaluator
    from mlr_mlflow.hypothesis import Hypothesis
    from mlr_mlflow.tracking import connect

    client = connect(store)
    start = time.perf_counter()
    Evaluator(client, config, suite=suite).evaluate(
        [Hypothesis("activation", "def activation(x):\n    return x\n", "bench")], "full", seeds)
    baselines_s = time.perf_counter() - start
    start = time.perf_counter()
    evaluations = Evaluator(client, config, suite=suite).evaluate(
        [Hypothesis("activation", s, "bench") for s in sources], "full", seeds)
    wall = time.perf_counter() - start
    if not all(e.valid for e in evaluations):
        raise SystemExit("benchmark hypotheses must all be valid")
    return wall, baselines_s


def run_naive(sources, seeds, datasets, store: str, workdir: Path):
    import mlflow

    mlflow.set_tracking_uri(store)
    experiment = mlflow.set_experiment("naive-bench").experiment_id
    start = time.perf_counter()
    for i, source in enumerate(sources):
        path = workdir / f"naive_{i}.py"
        path.write_text(source)
        run = mlflow.projects.run(str(HERE / "naive"), entry_point="main", env_manager="local",
                                  experiment_id=experiment, synchronous=True,
                                  parameters={"hypothesis": str(path), "kind": "activation",
                                              "seeds": seeds, "datasets": ",".join(datasets)})
        if run.get_status() != "FINISHED":
            raise SystemExit(f"naive run {run.run_id} ended {run.get_status()}")
    return time.perf_counter() - start


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=64, help="hypotheses (default 64)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--datasets", default="", help="comma-separated; default: the whole suite")
    parser.add_argument("--naive-sample", type=int, default=4,
                        help="hypotheses for the naive path, evenly spaced (0: all)")
    parser.add_argument("--task-lines", type=int, default=16,
                        help="hypotheses for the CNN and attention task lines (0: skip them)")
    parser.add_argument("--top-k", type=int, default=4, help="hypotheses for the full-training line")
    parser.add_argument("--full-only", action="store_true", help="only the full-training line")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "")

    from mlr_mlflow.config import Config, for_kind, with_overrides
    from mlr_mlflow.evaluate.datasets import load_suite
    from mlr_mlflow.sandbox import resolve_backend

    config = for_kind(Config(), "activation")  # the one-pass rate activations train at (bare torch too)
    if args.datasets:
        config = with_overrides(config, suite={"datasets": tuple(args.datasets.split(","))})
    suite = load_suite(config.suite)
    sources = hypotheses(args.n)
    k = args.n if args.naive_sample <= 0 else min(args.naive_sample, args.n)
    sample = [sources[round(i * (args.n - 1) / max(k - 1, 1))] for i in range(k)]
    top = [sources[round(i * (args.n - 1) / max(args.top_k - 1, 1))] for i in range(args.top_k)]
    if args.full_only:
        with tempfile.TemporaryDirectory(prefix="mlr-bench-") as tmp:
            full_s, full_baselines_s = run_full(top, args.seeds, config, suite, f"sqlite:///{tmp}/full.db")
        result = {"full_topk_s": round(full_s, 2), "full_baselines_s": round(full_baselines_s, 2),
                  "top_k": args.top_k, "seeds": args.seeds, "datasets": len(suite)}
        print(f"full training of the top {args.top_k}: {full_s:.1f} s (full baselines once: "
              f"{full_baselines_s:.1f} s)")
        if args.json:
            print(json.dumps(result))
        return result
    print(f"{args.n} activation hypotheses x {args.seeds} seed(s) x {len(suite)} dataset(s), one-pass; "
          f"sandbox {resolve_backend(config.sandbox.backend)}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="mlr-bench-") as tmp:
        cwd = os.getcwd()
        os.chdir(tmp)  # artifacts of the temporary stores land here
        try:
            worker_start_s = time_worker_start(config)
            mlr_s, baselines_s, timings, evaluations = run_mlr(
                sources, args.seeds, config, suite, f"sqlite:///{tmp}/mlr.db")
            bare_s, bare_acc = run_bare(sources, args.seeds, config, suite)
            floor_s, floor_acc = run_grouped_floor(sources, args.seeds, config, suite)
            full_s, full_baselines_s = run_full(top, args.seeds, config, suite, f"sqlite:///{tmp}/full.db")
            naive_s = run_naive(sample, args.seeds, config.suite.datasets, f"sqlite:///{tmp}/naive.db",
                                Path(tmp))
            tasks = run_task_lines(sources[:args.task_lines], args.seeds, Path(tmp)) if args.task_lines else {}
        finally:
            os.chdir(cwd)
    diff = max(abs(bare_acc[(f"{i}:{s}", ds)] - r["test_acc"])
               for i, ev in enumerate(evaluations) for ds, per_seed in ev.per_seed.items()
               for s, r in per_seed.items())
    floor_diff = max(abs(floor_acc[(f"{i}:{s}", ds)] - r["test_acc"])
                     for i, ev in enumerate(evaluations) for ds, per_seed in ev.per_seed.items()
                     for s, r in per_seed.items())
    rate = {"mlr": 60 * args.n / mlr_s, "bare": 60 * args.n / bare_s, "naive": 60 * k / naive_s,
            "floor": 60 * args.n / floor_s}
    tracking = timings.get("tracking", 0.0)
    processes = int(timings.pop("processes"))
    result = {
        "hyp_per_min": round(rate["mlr"], 2),
        "ratio_vs_bare_torch": round(rate["mlr"] / rate["bare"], 3),
        "ratio_vs_grouped_floor": round(rate["mlr"] / rate["floor"], 3),
        "ratio_vs_naive": round(rate["mlr"] / rate["naive"], 1),
        "full_topk_s": round(full_s, 2), "top_k": args.top_k,
        "tracking_share": round(tracking / mlr_s, 4),
        "tracking_share_total": round((tracking + timings.get("tracking_background", 0.0)) / mlr_s, 4),
        "bare_hyp_per_min": round(rate["bare"], 2), "naive_hyp_per_min": round(rate["naive"], 3),
        "grouped_floor_hyp_per_min": round(rate["floor"], 2),
        # mlr-mlflow trains on this many sandboxed processes side by side; the two loops on one core
        "training_processes": processes,
        "hyp_per_min_per_process": round(rate["mlr"] / processes, 2),
        "n": args.n, "seeds": args.seeds, "datasets": len(suite), "naive_sample": k,
        "wall_s": {"mlr": round(mlr_s, 2), "bare": round(bare_s, 2), "naive": round(naive_s, 2),
                   "grouped_floor": round(floor_s, 2), "full_topk": round(full_s, 2),
                   "baselines_once": round(baselines_s, 2), "worker_cold_start": round(worker_start_s, 2), "full_baselines_once": round(full_baselines_s, 2)},
        "phases_s": {name: round(value, 2) for name, value in sorted(timings.items())},
        "max_abs_diff_vs_bare": diff, "max_abs_diff_vs_grouped_floor": floor_diff,
        "tasks": tasks,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "torch": __import__("torch").__version__,
                    "sandbox": resolve_backend(config.sandbox.backend)},
    }
    rows = [("mlr-mlflow (end to end)", args.n, mlr_s, rate["mlr"]),
            ("bare torch loop (per-model calls)", args.n, bare_s, rate["bare"]),
            ("grouped floor (plain loop)", args.n, floor_s, rate["floor"]),
            ("naive (mlflow run per hypothesis)", k, naive_s, rate["naive"])]
    rows += [(f"mlr-mlflow, {line['task']} ({family})", line["n"], line["wall_s"], line["hyp_per_min"])
             for family, line in tasks.items()]
    print(f"{'path':36s} {'hyps':>5s} {'wall s':>8s} {'hyp/min':>9s}")
    for name, n, wall, r in rows:
        print(f"{name:36s} {n:5d} {wall:8.2f} {r:9.2f}")
    print(f"full training of the top {args.top_k}: {full_s:.1f} s (full baselines once: {full_baselines_s:.1f} s); "
          f"a cold start of the sandbox server (once per process): {worker_start_s:.1f} s")
    print(f"ratio vs grouped floor {result['ratio_vs_grouped_floor']:.3f}; "
          f"max |acc - floor acc| = {floor_diff:g}")
    print(f"ratio vs bare torch {result['ratio_vs_bare_torch']:.3f}, vs naive "
          f"{result['ratio_vs_naive']:.1f}x; tracking {100 * result['tracking_share']:.1f} % of wall time "
          f"({100 * result['tracking_share_total']:.1f} % counting the part overlapped with training); "
          f"baselines once per store: {baselines_s:.1f} s; max |acc - bare acc| = {diff:g}")
    if args.json:
        print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
