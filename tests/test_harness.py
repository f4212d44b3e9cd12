"""The one harness that measures hypothesis code in the sandbox (`reward.features.harness`): the
behavioural fingerprints, the reward model's grid features and its probes all go through it, and
measure the built-in components exactly as they did before it existed."""
import math

import numpy as np
import pytest

from mlr_mlflow.fingerprint import FINGERPRINT_TARGET, compute
from mlr_mlflow.kinds import get_kind
from mlr_mlflow.reward.features.grid import behaviour_rows
from mlr_mlflow.reward.features.harness import measure_rows, mixed_matrix
from mlr_mlflow.reward.features.probes import probe_rows
from mlr_mlflow.reward.rows import ScoringLimits

# Measured with the three pipelines as they were before the harness (fingerprint.py, reward/grid.py,
# reward/probes.py each with its own loop, fallback and synthetic matrix): per (component, what),
# (length, sum, sum of |v|, sum of v * position). On the machine that moved them the values were
# byte for byte the same; compared here to 1e-7 of their scale, so another CPU's last bits pass.
BEFORE = {
    ("activation/relu", "fingerprint"): (128, 110.527304, 110.527304, 6664.790897),
    ("activation/relu", "grid"): (39, 18.02070341, 18.02070341, 430.3926157),
    ("activation/relu", "probes"): (16, -10.98632956, 16.93240184, -143.0589661),
    ("activation/gelu", "fingerprint"): (128, 106.3158514, 112.2982034, 6478.659018),
    ("activation/gelu", "grid"): (39, 15.61446944, 17.18477092, 358.8312611),
    ("activation/gelu", "probes"): (16, -12.70924036, 18.14404909, -161.7718922),
    ("activation/silu", "fingerprint"): (128, 100.6631882, 112.4285837, 6299.985249),
    ("activation/silu", "grid"): (39, 14.34123514, 18.00802469, 350.3877449),
    ("activation/silu", "probes"): (16, -13.3652204, 18.47552681, -167.3757572),
    ("preprocessing/standardize", "fingerprint"): (76, 29.30905663, 85.80582267, -82.29862188),
    ("preprocessing/standardize", "grid"): (16, 12.53685308, 13.02004966, 154.7541976),
    ("preprocessing/robust", "fingerprint"): (76, 102.9543958, 138.6127701, 2279.861331),
    ("preprocessing/robust", "grid"): (16, 20.09347899, 20.51058464, 232.9315459),
    ("preprocessing/quantile", "fingerprint"): (76, 29.54442583, 49.59449791, 7.834251923),
    ("preprocessing/quantile", "grid"): (16, 6.543307031, 6.663912931, 87.15194102),
    ("regularizer/l2", "fingerprint"): (86, -0.003056468478, 0.006719733031, -0.1960484657),
    ("regularizer/l2", "grid"): (6, -15.56703985, 15.56703985, -43.28807318),
    ("regularizer/elastic_net", "fingerprint"): (86, -0.001788234243, 0.004219866537, -0.1102942331),
    ("regularizer/elastic_net", "grid"): (6, -14.31171989, 14.31171989, -43.41348338),
}
COMPONENTS = {"activation": ["relu", "gelu", "silu"], "preprocessing": ["standardize", "robust", "quantile"],
              "regularizer": ["l2", "elastic_net"]}


def summary(values) -> tuple:
    x = np.asarray(values, dtype=np.float64)
    return len(x), float(x.sum()), float(np.abs(x).sum()), float((x * np.arange(1, len(x) + 1)).sum())


def assert_as_before(key, values):
    n, total, magnitude, weighted = BEFORE[key]
    got = summary(values)
    assert got[0] == n, key
    assert np.isfinite(np.asarray(values, dtype=np.float64)).all(), key
    for want, have, scale in ((total, got[1], magnitude), (magnitude, got[2], magnitude),
                              (weighted, got[3], magnitude * n)):
        assert abs(have - want) <= 1e-7 * scale + 1e-12, (key, want, have)


@pytest.mark.parametrize("kind", sorted(COMPONENTS))
def test_built_in_components_measure_as_before_the_harness(kind, sandbox):
    sources = [get_kind(kind).component(c) for c in COMPONENTS[kind]]
    fingerprints = compute(kind, sources, sandbox)
    grid, grid_unmeasured = behaviour_rows(kind, sources)
    probes, probes_unmeasured = probe_rows(kind, sources)
    assert not any(grid_unmeasured) and not any(probes_unmeasured)
    for name, fp, g, p in zip(COMPONENTS[kind], fingerprints, grid, probes):
        assert_as_before((f"{kind}/{name}", "fingerprint"), fp)
        assert_as_before((f"{kind}/{name}", "grid"), g)
        if (f"{kind}/{name}", "probes") in BEFORE:
            assert_as_before((f"{kind}/{name}", "probes"), p)
        else:
            assert len(p) == 0


def test_a_fingerprint_that_cannot_be_measured_in_time_is_unmeasured_not_guessed(sandbox):
    slow = "import torch\n\ndef activation(x):\n    for _ in range(10 ** 9):\n        x = x + 0.0\n    return x\n"
    relu = get_kind("activation").component("relu")
    limits = ScoringLimits(row_s=1.0, request_s=math.inf)
    rows, unmeasured = measure_rows(FINGERPRINT_TARGET, "activation", [slow, relu], limits, sandbox=sandbox)
    assert rows[0] is None and "could not be measured within 1 s" in unmeasured[0]
    assert rows[1] is not None and unmeasured[1] is None
    assert compute("activation", [slow], sandbox, timeout_s=1.0) == [None]  # so never a duplicate


def test_the_synthetic_matrix_is_drawn_from_the_generator_it_is_given():
    a = mixed_matrix(np.random.default_rng(0), 16)
    assert a.shape == (16, 3) and a[0, 2] == 25.0  # the bounded column's outlier
    assert np.array_equal(a, mixed_matrix(np.random.default_rng(0), 16))
    rng = np.random.default_rng(0)
    first, second = mixed_matrix(rng, 16), mixed_matrix(rng, 8)  # one stream, as fingerprints draw
    assert np.array_equal(first, a) and not np.array_equal(second, a[:8])
