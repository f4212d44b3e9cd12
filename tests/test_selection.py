"""A round's screening decision as a typed value: selection.json read and written with the same
keys as every version wrote them, older shapes read only by `from_json`, waves added without
changing what was decided before."""
import json

from mlr_mlflow.hypothesis import Hypothesis
from mlr_mlflow.round.selection import Selection

A, B, C, D = (c * 64 for c in "abcd")


def saved(**changed) -> dict:
    """selection.json as this version writes it after the first wave."""
    data = {"model_run_id": "m1", "scores": {A: 0.9, B: 0.5, C: 0.1}, "spreads": {A: 0.1, B: 0.2, C: 0.3},
            "picks": [A, C], "explored": [C], "metrics": {"selection_mean_similarity": None,
                                                          "pool_mean_similarity": 0.4},
            "acquisition": {"rule": "ucb", "beta": 1.0}, "wave_sizes": [2, 1], "waves": [[A, C]]}
    data.update(changed)
    return data


def test_a_saved_selection_is_written_back_with_exactly_its_keys_and_values():
    for data in (saved(), saved(rescores={B: 0.7}, refits=[{"wave": 1, "learned": 2, "model_run_id": "m1"}]),
                 saved(future_key={"x": 1})):  # a key this version does not know is kept
        assert json.dumps(Selection.from_json(data).to_json(), sort_keys=True) == json.dumps(data, sort_keys=True)


def test_a_selection_from_before_waves_is_one_wave_of_its_picks_with_nothing_more_to_pick():
    old = {k: v for k, v in saved().items() if k not in ("waves", "wave_sizes", "spreads", "acquisition")}
    selection = Selection.from_json(old)
    assert selection.waves == ((A, C),) and selection.wave_sizes == (2,) and not selection.more_waves
    written = selection.to_json()
    assert "spreads" not in written and "acquisition" not in written  # absent stays absent


def test_the_first_decision_is_the_first_of_the_planned_waves():
    decision = {k: v for k, v in saved().items() if k not in ("waves", "wave_sizes")}
    selection = Selection.first(decision, [2, 1])
    assert selection.to_json() == saved()
    assert selection.more_waves and selection.next_size == 1


def test_a_wave_adds_picks_rescores_and_a_refit_and_leaves_the_first_decision_as_it_was():
    first = Selection.from_json(saved())
    second = first.with_wave({"picks": [B], "explored": [], "scores": {B: 0.8}, "model_run_id": "m2"}, learned=2)
    assert second.picks == (A, C, B) and second.waves == ((A, C), (B,)) and second.explored == (C,)
    assert second.rescores == {B: 0.8} and second.refits == ({"wave": 1, "learned": 2, "model_run_id": "m2"},)
    assert not second.more_waves and second.latest_scores() == {A: 0.9, B: 0.8, C: 0.1}
    assert first.to_json() == saved()  # frozen: the earlier decision is unchanged


def test_screening_says_how_each_scored_proposal_was_picked_and_in_which_wave():
    selection = Selection.from_json(saved()).with_wave(
        {"picks": [B], "explored": [], "scores": {B: 0.8}, "model_run_id": "m2"}, learned=1)
    screening = Selection.from_json({**saved(), "scores": {**saved()["scores"], D: 0.0}}).screening()
    assert screening[D] == ({"reward.score": 0.0}, {"mlr.screen.pick": "screened-out"})
    marks = selection.screening()
    # a first-wave pick keeps its ensemble spread (the review queue flags a wide one) ...
    assert marks[A] == ({"reward.score": 0.9, "reward.spread": 0.1},
                        {"mlr.screen.pick": "reward", "mlr.screen.wave": "0"})
    assert marks[C][1] == {"mlr.screen.pick": "explore", "mlr.screen.wave": "0"}
    # ... a proposal rescored after a refit does not: its spread was not kept
    assert marks[B] == ({"reward.score": 0.8}, {"mlr.screen.pick": "reward", "mlr.screen.wave": "1"})


def test_annotating_a_hypothesis_leaves_the_original_and_its_origin_untouched():
    origin = {"tags": {"mlr.llm.model": "m"}, "metrics": {"llm.prompt_tokens": 3.0}}
    h = Hypothesis("activation", "def activation(x):\n    return x\n", "llm", origin)
    marked = h.annotated(tags={"mlr.screen.pick": "reward"}, metrics={"reward.score": 1.0})
    assert h.origin == {"tags": {"mlr.llm.model": "m"}, "metrics": {"llm.prompt_tokens": 3.0}}
    assert marked.origin == {"tags": {"mlr.llm.model": "m", "mlr.screen.pick": "reward"},
                             "metrics": {"llm.prompt_tokens": 3.0, "reward.score": 1.0}}
    assert marked == h and marked.sha256 == h.sha256  # the same hypothesis
