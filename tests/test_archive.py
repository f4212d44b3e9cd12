"""The behaviour archive (generate/archive.py): the best per cell, deterministic for a seed, built
from the store so that a resumed round sees the archive its first start saw."""
import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from mlr_mlflow.fingerprint import MEASURES
from mlr_mlflow.generate.archive import Archive, Entry, describe, mean_pairwise_distance
from mlr_mlflow.generate.context import archive_parents, build_archive
from mlr_mlflow.round import Round
from mlr_mlflow.tracking import connect, names
from mlr_mlflow.validate.loader import load_checked

from .faults import Flaky
from .resume_kit import round_queries_refused, small_config

SOURCES = {
    "relu": "import torch\n\ndef activation(x):\n    return torch.relu(x)\n",
    "leaky": "import torch\n\ndef activation(x):\n    return torch.maximum(x, 0.3 * x)\n",
    "tanh": "import torch\n\ndef activation(x):\n    return torch.tanh(x)\n",
    "swish": "import torch\n\ndef activation(x):\n    return x * torch.sigmoid(x)\n",
    "square": "import torch\n\ndef activation(x):\n    return x * x\n",
    "identity": "import torch\n\ndef activation(x):\n    return 1.0 * x\n",
}


def fingerprint(name: str) -> np.ndarray:
    return np.asarray(MEASURES["activation"](load_checked(SOURCES[name], "activation")))


@pytest.fixture(scope="module")
def prints():
    return {name: fingerprint(name) for name in SOURCES}


def test_descriptors_tell_apart_what_a_researcher_would(prints):
    slope, smooth, saturation, mono = zip(*(describe("activation", prints[n]) for n in
                                            ("relu", "leaky", "tanh", "swish", "square")))
    assert slope[0] == pytest.approx(0) and slope[1] == pytest.approx(0.3)  # negative side
    assert smooth[0] > smooth[3]  # ReLU's kink against swish's smooth slope
    assert saturation[2] < 0.1 < saturation[0]  # tanh flattens at both ends, ReLU at one
    assert mono[4] < 0.6 < mono[2]  # the square falls then rises


@pytest.mark.parametrize("kind", ["preprocessing", "regularizer"])
def test_the_other_kinds_references_fall_into_different_cells(kind):
    from mlr_mlflow.config import DEFAULT_KINDS
    from mlr_mlflow.kinds import get_kind

    sets, component = DEFAULT_KINDS[kind], get_kind(kind).component
    archive = Archive(kind)
    cells = {archive.place(np.asarray(MEASURES[kind](load_checked(component(n), kind))))[0]
             for n in (*sets.baselines, *sets.sota)}
    assert len(cells) >= 4  # e.g. none, l1, l2, orthogonal: four behaviours, four cells


def test_the_archive_keeps_the_best_of_each_cell_whatever_the_order(prints):
    entries = [Entry("a", 0.5, prints["relu"]), Entry("b", 0.7, prints["relu"] * 1.0001),
               Entry("c", 0.4, prints["tanh"]), Entry("d", 0.6, prints["swish"])]
    forward, backward = Archive("activation", entries), Archive("activation", entries[::-1])
    assert [e.entry.key for e in forward.elites()] == [e.entry.key for e in backward.elites()] \
        == ["b", "d", "c"]
    assert forward.coverage == pytest.approx(3 / forward.size)


def test_parents_are_the_best_elites_plus_a_seeded_draw(prints):
    rng = np.random.default_rng(0)
    entries = [Entry(f"h{i}", float(i), prints[name] * (1 + 0.5 * rng.random()))
               for i, name in enumerate(sorted(SOURCES) * 3)]
    archive = Archive("activation", entries)
    elites = [e.entry.key for e in archive.elites()]
    assert len(elites) > 4
    first = [e.key for e in archive.parents(4, seed=3)]
    assert first == [e.key for e in Archive("activation", entries[::-1]).parents(4, seed=3)]
    assert first[:2] == elites[:2]  # the better half by score
    draws = {tuple(e.key for e in archive.parents(4, seed=s)) for s in range(20)}
    assert len(draws) > 1  # the rest is drawn, by the seed
    assert all(list(d) == sorted(d, key=elites.index) for d in draws)  # best first


def test_the_spread_of_near_copies_is_smaller_than_of_different_shapes(prints):
    archive = Archive("activation")
    point = {n: archive.place(prints[n])[1] for n in prints}
    copies = [point["relu"], archive.place(prints["relu"] * 1.01)[1]]
    assert mean_pairwise_distance(copies) < 0.01
    assert mean_pairwise_distance([point[n] for n in ("relu", "tanh", "square")]) > 0.2


def test_a_resumed_round_sees_the_archive_its_first_start_saw(tracking_uri):
    config = small_config(parents=4, parents_from="archive")
    Round(connect(tracking_uri), config, "activation").run(6, 0, 1, seed=0)
    client = MlflowClient(tracking_uri)
    exp_id = client.get_experiment_by_name("mlr-activation").experiment_id
    before = build_archive(client, exp_id, "activation")
    assert before.cells  # the first round's hypotheses carry fingerprints
    parents = [k.sha256 for k in archive_parents(client, exp_id, "activation", 4, 1)[0]]

    with pytest.raises(MlflowException, match="refused"):  # killed after generation
        Round(Flaky(connect(tracking_uri), search_runs=round_queries_refused), config,
              "activation").run(6, 0, 1, seed=1)
    [dead] = client.search_runs([exp_id], "attributes.status = 'FAILED'")
    assert dead.data.metrics[names.ARCHIVE_CELLS] == len(before.cells)
    Round(connect(tracking_uri), config, "activation").resume()
    round_id = dead.data.tags[names.ROUND_ID]

    after = build_archive(client, exp_id, "activation", exclude_round=round_id)
    assert {c: e.entry.key for c, e in after.cells.items()} == \
        {c: e.entry.key for c, e in before.cells.items()}
    again = archive_parents(client, exp_id, "activation", 4, 1, exclude_round=round_id)[0]
    assert [k.sha256 for k in again] == parents
    assert client.get_run(dead.info.run_id).info.status == "FINISHED"
