"""What the resume tests share: a small round's config, a round killed before training, and the
terminal runs of a round by hypothesis."""
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from mlr_mlflow.config import Config, with_overrides
from mlr_mlflow.round import Round
from mlr_mlflow.tracking import connect, names

from .faults import Flaky, refused


def small_config(**discover):
    return with_overrides(Config(), suite={"datasets": ("iris", "xor")},
                          discover={"screen": "one-pass", "parents": 0, **discover})


def round_queries_refused(*args, **kwargs):
    """Fails the first look at a round's own evaluations: the round dies just before training."""
    query = kwargs.get("filter_string") or (args[1] if len(args) > 1 else "")
    return refused() if names.ROUND_ID in query else None


def dead_round(uri, config, n, top_k=0, seed=5) -> str:
    """A round killed after generation (and screening), before any training: FAILED with an error,
    so resumable, with its generation.json (and selection.json) logged."""
    with pytest.raises(MlflowException, match="refused"):
        Round(Flaky(connect(uri), search_runs=round_queries_refused), config, "activation").run(
            n, top_k, 1, seed=seed)
    client = MlflowClient(uri)
    [run] = client.search_runs([client.get_experiment_by_name("mlr-activation").experiment_id])
    assert run.info.status == "FAILED" and run.data.tags[names.STATUS] == "error"
    return run.info.run_id


def terminal_runs_by_sha(client, run_id):
    exp = client.get_run(run_id).info.experiment_id
    kids = client.search_runs([exp], f"tags.`{names.PARENT_RUN_ID}` = '{run_id}'", max_results=1000)
    assert all(r.info.status != "RUNNING" for r in kids)
    by_sha = {}
    for r in kids:
        if r.data.tags.get(names.STATUS) in ("evaluated", "invalid", "screened"):
            by_sha.setdefault(r.data.tags[names.HYPOTHESIS_SHA256], []).append(r)
    return by_sha
