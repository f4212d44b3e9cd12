"""The throughput benchmark runs on a tiny setting, and its bare loop agrees with the evaluator.

No timing is asserted here (speed belongs in bench/ and docs/benchmarks.md)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_throughput_benchmark_runs_tiny_and_agrees_with_bare_torch(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "throughput.py"), "--n", "3", "--seeds", "2",
         "--datasets", "iris,xor", "--naive-sample", "1", "--task-lines", "1", "--top-k", "1", "--json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in ("hyp_per_min", "ratio_vs_bare_torch", "ratio_vs_grouped_floor", "ratio_vs_naive",
                "tracking_share", "full_topk_s"):
        assert result[key] > 0, key
    # the bare loop and the grouped floor train the same models the same way: identical accuracies
    assert result["max_abs_diff_vs_bare"] == 0 and result["max_abs_diff_vs_grouped_floor"] == 0
    assert {f: line["hyp_per_min"] > 0 for f, line in result["tasks"].items()} == {"cnn": True, "attention": True}
    assert (result["n"], result["seeds"], result["datasets"], result["naive_sample"]) == (3, 2, 2, 1)
    assert "mlr-mlflow (end to end)" in proc.stdout
    assert not list(tmp_path.iterdir())  # stores and artifacts went to a temporary directory


@pytest.mark.slow
def test_null_experiment_runs_tiny_and_never_confirms_relu_in_disguise(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "null_experiment.py"), "--rounds", "1", "--n", "3",
         "--top-k", "2", "--seeds", "1", "--confirm-seeds", "1", "--datasets", "iris",
         "--ceiling-seeds", "2", "--ceiling-datasets", "iris",
         "--simulated-rounds", "20", "--json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["rounds"] == 1 and result["per_round"][0]["selected"] == 2
    assert result["confirmed"] == 0.0  # nothing here is better than ReLU
    for key in ("naive_best_above_half", "naive_full_above_half", "naive_test"):
        assert 0.0 <= result[key] <= 1.0
    assert result["noise_ceiling"] is None or -1.0 <= result["noise_ceiling"] <= 1.0
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_reward_benchmark_quick_measures_a_held_out_source_and_states_contract_keys(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "reward.py"), "--quick", "--json",
                           "--algorithms", "regressor", "--truth-again"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in ("top10_fraction_of_random", "by_round_spearman", "by_source_spearman", "ndcg_at_10",
                "onepass_full_spearman", "noise_ceiling"):
        assert key in result, key
    assert result["held_out_source"] == "literature" and "literature" in result["by_source_spearman"]
    entry = result["models"]["structural+grid/regressor"]
    assert entry["by_source"]["literature"]["held_out_source"] is True
    assert result["full_trained"] == result["n"]  # the quick pool is trained in full too
    assert 0 < result["top10_fraction_of_random"] and 0 <= result["ndcg_at_10"] <= 1
    budget = result["quarter_budget"]
    assert all(0 <= found <= 10 for found in budget["strategies"].values())
    waves = entry["waves"]  # [discover] waves simulated: 1, 2 and 3 waves per round
    assert waves["possible"] > 0 and set(waves["by_waves"]) == {"1", "2", "3"}
    assert all(0 <= w["true_top_in_full"] <= waves["possible"] for w in waves["by_waves"].values())
    refs = result["reference_orders"]  # the cheap rung's own orders against the same truth
    assert {"one_pass_b_wr", "one_pass_screen", "full_b_wr_other_seeds"} <= set(refs)
    assert -1.0 <= result["truth_noise_ceiling"] <= 1.0  # the pool trained in full on disjoint seeds too
    assert all(ref["find_10_of_top10"]["evaluations"] >= 10 for ref in refs.values())
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_answers_benchmark_runs_once_and_no_command_it_times_probes_a_sandbox(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "answers.py"), "--repeat", "1", "--json"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(result["commands"]) == {"an error", "scheduler status", "--resume, nothing to resume"}
    assert all(r["wall_s"] > 0 and r["goal_s"] > 0 for r in result["commands"].values())
    assert result["probes"] == 0
    assert not list(tmp_path.iterdir())


def _check_results(members: dict, seeds: list[int], noise: float, rng) -> dict:
    """What a suite check keeps, for a synthetic panel: each member's test accuracy is its quality
    plus seed noise, on two tasks of 500 test rows; one baseline and one SOTA reference."""
    def results(quality):
        return {task: {s: {"test_acc": round(min(1.0, max(0.0, quality + noise * rng.normal())) * 500) / 500,
                           "n_test": 500, "test_loss": 1.0 - quality} for s in seeds}
                for task in ("t1", "t2")}
    half = len(seeds) // 2
    return {"members": list(members), "seeds_a": seeds[:half], "seeds_b": seeds[half:],
            "rungs": {"full": {"panel": {m: results(q) for m, q in members.items()},
                               "baselines": [results(0.80)], "sota": [results(0.81)]}}}


def test_ceiling_by_seeds_pools_checks_and_measures_repeatability_by_set_size():
    import numpy as np

    sys.path.insert(0, str(ROOT / "bench"))
    from ceiling_by_seeds import ceilings, pool

    from mlr_mlflow.stats import spearman_brown

    rng = np.random.default_rng(0)
    quality = {"zero": 0.1, "identity": 0.5, "relu": 0.80, "elu": 0.82, "gelu": 0.84, "silu": 0.86,
               "mish": 0.88, "tanh": 0.78, "sigmoid": 0.74, "sine": 0.70}
    exact = [_check_results(quality, [0, 1], 0.0, rng), _check_results(quality, [2, 3], 0.0, rng)]
    members, panel, baselines, sota, seeds = pool(exact)
    assert seeds == [0, 1, 2, 3] and sorted(panel["relu"]["t1"]) == [0, 1, 2, 3]
    # no seed noise: every pair of seed sets ranks the panel alike
    out = ceilings(members, panel, baselines, sota, seeds, 1e-4, "accuracy", splits=5)
    assert set(out) == {1, 2} and out[1]["b_wr"]["all"]["min"] == 1.0
    # seed noise as large as the members' differences: one seed repeats worse than three
    noisy = [_check_results(quality, [0, 1, 2], 0.05, rng), _check_results(quality, [3, 4, 5], 0.05, rng)]
    out = ceilings(*pool(noisy), 1e-4, "accuracy", splits=30)
    assert set(out) == {1, 2, 3} and out[3]["b_wr"]["non_degenerate"]["spearman_brown_from_3"] == \
        out[3]["b_wr"]["non_degenerate"]["mean"]
    assert out[1]["bsota_wr"]["non_degenerate"]["mean"] < out[3]["bsota_wr"]["non_degenerate"]["mean"] < 1.0
    assert spearman_brown(0.8, 2) == pytest.approx(1.6 / 1.8)
    with pytest.raises(SystemExit, match="two runs"):
        pool([exact[0], exact[0]])
    more = _check_results(quality, [4, 5], 0.0, rng)
    more["rungs"]["full"]["sota"].append(more["rungs"]["full"]["sota"][0])
    with pytest.raises(SystemExit, match="different references"):
        pool([exact[0], more])


@pytest.mark.slow
def test_round_wall_runs_a_round_as_a_user_starts_it_on_the_seeds_asked_for(tmp_path):
    from mlflow import MlflowClient

    sys.path.insert(0, str(ROOT / "bench"))
    from round_wall import STAGES, one_round

    config = tmp_path / "mlr.toml"
    config.write_text('[suite]\ndatasets = ["iris"]\n[confirm]\nenabled = false\n')
    result = one_round(tmp_path, config, ROOT, seeds=1)
    assert result["wall_s"] > 0 and result["evaluated"] > 0 and result["full"] >= 1
    assert {"one_pass_s", "full_s"} <= set(result) <= {"wall_s", "evaluated", "full", *STAGES}
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    [round_run] = client.search_runs([client.get_experiment_by_name("mlr-activation").experiment_id],
                                     "tags.`mlr.role` = 'round'")
    assert round_run.data.params["seeds"] == "1"
