"""A resumed round keeps the decisions it recorded before it was killed: the selection of a screened
round (even after the champion changed), the promotions between halving rungs, and saved waves."""
import json

import pytest
from mlflow import MlflowClient

from mlr_mlflow.config import with_overrides
from mlr_mlflow.round import Round
from mlr_mlflow.tracking import connect, names

from .faults import Flaky, refused
from .resume_kit import dead_round, small_config, terminal_runs_by_sha


@pytest.mark.slow
@pytest.mark.parametrize("saved_by", ["this version", "a version before waves"])
def test_a_screened_round_resumes_with_its_saved_selection_after_the_champion_changed(tracking_uri,
                                                                                      saved_by):
    from mlr_mlflow.tracking.runs import log_json

    from .faults import register_champion

    config = small_config(screen="reward", explore=0.0, eta=1)  # the champion's pick goes to full
    register_champion(tracking_uri, "activation", sign=1.0)  # prefers long code
    round_id = dead_round(tracking_uri, config, n=4, top_k=1)
    client = MlflowClient(tracking_uri)
    selection = json.loads(open(client.download_artifacts(round_id, names.SELECTION_ARTIFACT)).read())
    [pick] = selection["picks"]
    assert not terminal_runs_by_sha(client, round_id)  # killed after selecting, before acting
    if saved_by != "this version":  # selection.json as it was before waves: no waves, no sizes
        selection = {k: v for k, v in selection.items() if k not in ("waves", "wave_sizes")}
        log_json(client, round_id, selection, names.SELECTION_ARTIFACT)
    register_champion(tracking_uri, "activation", sign=-1.0)  # a new champion prefers short code
    scores = selection["scores"]
    assert min(scores, key=scores.get) != pick  # it would have picked another one

    summary = Round(connect(tracking_uri), config, "activation").resume()
    assert summary.round_run_id == round_id
    assert json.loads(open(client.download_artifacts(round_id, names.SELECTION_ARTIFACT)).read()) == selection
    by_sha = terminal_runs_by_sha(client, round_id)
    variants = {sha: sorted(r.data.tags[names.VARIANT] for r in runs) for sha, runs in by_sha.items()}
    # the saved pick was trained (and, once trained fully, confirmed on fresh data)
    assert variants[pick] in (["confirm", "full", "one-pass"], ["one-pass"])
    for sha in scores:
        if sha != pick:  # and only it: the others have one terminal status, screened out
            assert variants[sha] == ["screened"]
    assert all(r.data.metrics["reward.score"] == scores[sha] for sha, runs in by_sha.items()
               for r in runs if sha in scores)


@pytest.mark.slow
def test_a_halving_round_killed_between_rungs_resumes_with_the_same_promotions(tracking_uri):
    """Killed after its one-pass rung (the store refuses to open the first full-training run): on
    resume the one-pass runs stand as they were, exactly the same top_k are promoted to full
    training, and no hypothesis is evaluated twice in any variant."""
    from .faults import register_champion

    register_champion(tracking_uri, "activation", sign=1.0)
    config = with_overrides(small_config(screen="reward", explore=0.0, eta=2),
                            suite={"datasets": ("iris",)}, confirm={"seeds": 1})

    def full_runs_refused(experiment_id, tags=None, run_name=None, **kwargs):
        return refused() if (tags or {}).get(names.VARIANT) == "full" else None

    with pytest.raises(Exception):
        Round(Flaky(connect(tracking_uri), create_run=full_runs_refused), config, "activation").run(
            6, 2, 1, seed=4)
    client = MlflowClient(tracking_uri)
    [round_run] = client.search_runs([client.get_experiment_by_name("mlr-activation").experiment_id],
                                     f"tags.`{names.ROLE}` = 'round'")
    assert round_run.info.status == "FAILED"
    round_id = round_run.info.run_id
    before = terminal_runs_by_sha(client, round_id)
    one_pass_before = {r.info.run_id for runs in before.values() for r in runs
                       if r.data.tags[names.VARIANT] == "one-pass"}
    assert len(one_pass_before) == 4 and not any(r.data.tags[names.VARIANT] == "full"
                                                 for runs in before.values() for r in runs)

    summary = Round(connect(tracking_uri), config, "activation").resume()
    assert summary.round_run_id == round_id and summary.full_evaluated == 2
    after = terminal_runs_by_sha(client, round_id)
    variants = {sha: sorted(r.data.tags[names.VARIANT] for r in runs) for sha, runs in after.items()}
    for listed in variants.values():
        assert len(listed) == len(set(listed))  # none twice
    counts = {v: sum(v in listed for listed in variants.values())
              for v in ("one-pass", "full", "confirm", "screened")}
    assert counts == {"one-pass": 4, "full": 2, "confirm": 2, "screened": summary.valid - 4}
    assert {r.info.run_id for runs in after.values() for r in runs
            if r.data.tags[names.VARIANT] == "one-pass"} == one_pass_before  # kept, not redone
    one_pass = sorted((r for runs in after.values() for r in runs
                       if r.data.tags[names.VARIANT] == "one-pass"),
                      key=lambda r: (-r.data.metrics[names.VAL_B_WR], -r.data.metrics[names.VAL_BSOTA_WR],
                                     r.data.tags[names.HYPOTHESIS_SHA256]))
    assert {sha for sha, listed in variants.items() if "full" in listed} == \
        {r.data.tags[names.HYPOTHESIS_SHA256] for r in one_pass[:2]}


def test_a_round_killed_between_waves_keeps_the_first_and_trains_the_saved_second(tracking_uri):
    """[discover] waves = 2, killed as the second wave's first run is created (after the refitted
    champion's decision was saved): on resume the first wave's runs stand, the second wave is the
    one saved (not decided again by a champion that has not learned anything), and no hypothesis
    is evaluated twice."""
    from mlr_mlflow.tracking.runs import read_json

    from .faults import RefitScorer, register_champion

    register_champion(tracking_uri, "activation", 1.0, model=RefitScorer(1.0))
    config = with_overrides(small_config(screen="reward", explore=0.0, eta=2, waves=2, mmr_lambda=1.0),
                            suite={"datasets": ("iris",)}, confirm={"enabled": False})
    created = []

    def second_wave_refused(experiment_id, tags=None, run_name=None, **kwargs):
        if (tags or {}).get(names.VARIANT) == "one-pass" and tags.get(names.ROLE) == "hypothesis":
            created.append(tags)
            if len(created) > 2:
                return refused()
        return None

    with pytest.raises(Exception):
        Round(Flaky(connect(tracking_uri), create_run=second_wave_refused), config, "activation").run(
            8, 2, 1, seed=4)
    assert [t.get("mlr.screen.wave") for t in created] == ["0", "0", "1"]
    client = MlflowClient(tracking_uri)
    [round_run] = client.search_runs([client.get_experiment_by_name("mlr-activation").experiment_id],
                                     f"tags.`{names.ROLE}` = 'round'")
    saved = read_json(client, round_run.info.run_id, names.SELECTION_ARTIFACT)
    first, second = saved["waves"]
    before = terminal_runs_by_sha(client, round_run.info.run_id)
    kept = {r.info.run_id for runs in before.values() for r in runs
            if r.data.tags[names.VARIANT] == "one-pass"}
    assert {sha for sha, runs in before.items() for r in runs
            if r.data.tags[names.VARIANT] == "one-pass"} == set(first)

    summary = Round(connect(tracking_uri), config, "activation").resume()
    assert summary.round_run_id == round_run.info.run_id
    assert read_json(client, round_run.info.run_id, names.SELECTION_ARTIFACT) == saved
    after = terminal_runs_by_sha(client, round_run.info.run_id)
    one_pass = {sha: [r for r in runs if r.data.tags[names.VARIANT] == "one-pass"]
                for sha, runs in after.items()}
    assert {sha for sha, runs in one_pass.items() if runs} == set(first + second)
    assert all(len(runs) <= 1 for runs in one_pass.values())  # none twice
    assert kept <= {r.info.run_id for runs in one_pass.values() for r in runs}  # kept, not redone
