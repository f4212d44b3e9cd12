"""How a training call splits between sandboxed processes (evaluate/shares.py)."""
from .conftest import SWISH


def test_shares_split_only_work_worth_a_process():
    from mlr_mlflow.evaluate.shares import shares

    sizes = [100, 120, 400, 1000, 500, 500, 500, 800]  # training rows per dataset
    everything = list(range(8))
    # many hypotheses: by hypothesis, every process on every dataset
    assert shares(64, sizes, 3, 1, 2) == [(range(0, 32), everything), (range(32, 64), everything)]
    assert [h for h, _ in shares(50, sizes, 3, 1, 3)] == [range(0, 17), range(17, 33), range(33, 50)]
    # a top-k in full training: by dataset, near-equal rows per process, every hypothesis in each
    (h1, d1), (h2, d2) = shares(4, sizes, 3, 30, 2)
    assert h1 == h2 == range(4) and sorted(d1 + d2) == everything
    assert abs(sum(sizes[d] for d in d1) - sum(sizes[d] for d in d2)) <= 100
    assert shares(64, sizes, 3, 1, 1) == [(range(0, 64), everything)]  # one worker: one job
    assert shares(2, [10, 10], 1, 1, 8) == [(range(0, 2), [0, 1])]  # too little work to split
    assert shares(1, [10**6], 3, 30, 8) == [(range(0, 1), [0])]  # nothing to split


def test_workers_zero_means_one_per_cpu_up_to_the_cap(monkeypatch):
    from mlr_mlflow.evaluate import shares as evaluator

    sizes = [1000] * 4  # 64 hypotheses x 4 datasets x 3 seeds x 4 epochs: work for 16 processes
    monkeypatch.setattr(evaluator, "usable_cpus", lambda: 3)
    assert len(evaluator.shares(64, sizes, 3, 4, 0)) == 3
    monkeypatch.setattr(evaluator, "usable_cpus", lambda: 64)  # a large shared machine
    assert len(evaluator.shares(64, sizes, 3, 4, 0)) == evaluator.AUTO_WORKERS_MAX == 8
    assert len(evaluator.shares(64, sizes, 3, 4, 16)) == 16  # asked for explicitly


def test_side_by_side_shares_give_one_job_s_numbers(tmp_path, small_config, monkeypatch):
    """[sandbox] workers = 2: the hypotheses train in two sandboxed processes at once, with the
    numbers one job gives, and a hypothesis that raises during training fails alone in its share.
    Each store is fresh, so its references train too, split the same way (they trained on one
    core before): the win rates, computed against them, are one job's as well."""
    import dataclasses

    from mlr_mlflow.evaluate import shares as shares_module
    from mlr_mlflow.evaluate.evaluator import Evaluator
    from mlr_mlflow.hypothesis import Hypothesis
    from mlr_mlflow.sandbox import pool
    from mlr_mlflow.tracking import connect

    raises = ("import torch\n\n\ndef activation(x):\n    if x.shape[-1] == 64:\n"
              "        raise ValueError('not at this width')\n    return torch.tanh(x)\n")
    sources = [SWISH, "import torch\n\n\ndef activation(x):\n    return torch.tanh(x)\n", raises,
               "import torch\n\n\ndef activation(x):\n    return torch.relu(x) - 0.1 * x\n"]
    monkeypatch.setattr(shares_module, "MIN_SHARE_MODEL_EPOCHS", 1)  # these small calls split too
    results = {}
    # 4 hypotheses on 3 datasets split by dataset, on 2 by hypothesis; each against one job
    for datasets, by in ((("iris", "moons", "wine"), "dataset"), (("iris", "moons"), "hypothesis")):
        config = dataclasses.replace(small_config, suite=dataclasses.replace(
            small_config.suite, datasets=datasets))
        for workers in (1, 2):
            messages = []
            local = dataclasses.replace(config, sandbox=dataclasses.replace(config.sandbox, workers=workers))
            pool.close_idle()
            store = f"sqlite:///{tmp_path}/{len(datasets)}-{workers}.db"
            evaluations = Evaluator(connect(store), local, messages.append).evaluate(
                [Hypothesis("activation", s) for s in sources], seeds=1)
            split = any(f"2 sandboxed processes side by side, split by {by}" in m for m in messages)
            assert split == (workers == 2), messages
            references = any("references in 2 sandboxed processes side by side" in m for m in messages)
            assert references == (workers == 2), messages
            if workers == 2:  # both servers came back to the pool, alive: two processes did train
                assert sum(len(found) for found in pool._idle.values()) == 2
            results[workers] = [(e.valid, e.b_wr, e.val_b_wr, e.uncertainty,
                                 {d: m["test_acc"] for d, m in (e.datasets or {}).items()})
                                for e in evaluations]
            assert [list(r[-1]) for r in results[workers]] == [list(datasets)] * 2 + [[]] + [list(datasets)]
        assert results[1] == results[2]
        assert [valid for valid, *_ in results[2]] == [True, True, False, True]


# Issue 26: what the probes cannot see is checked inside the training job, on the real data.
