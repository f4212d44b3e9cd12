"""Shared fixtures: real sqlite MLflow stores in tmp_path, a small dataset suite, one sandbox."""
from __future__ import annotations

import pytest

from mlr_mlflow.config import Config, with_overrides
from mlr_mlflow.sandbox import SubprocessSandbox

SWISH = "import torch\n\ndef activation(x):\n    return x * torch.sigmoid(x)\n"
ZERO = "def activation(x):\n    return x * 0\n"
SMALL_SUITE = ("iris", "moons", "xor")


@pytest.fixture
def tracking_uri(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/mlflow.db"


@pytest.fixture(scope="session")
def shared_uri(tmp_path_factory) -> str:
    """One store for tests that may share cached baselines (they never assert on run counts)."""
    return f"sqlite:///{tmp_path_factory.mktemp('store')}/mlflow.db"


@pytest.fixture
def small_config() -> Config:
    return with_overrides(Config(), suite={"datasets": SMALL_SUITE})


@pytest.fixture(scope="session")
def sandbox():
    with SubprocessSandbox() as sb:
        yield sb


def write(tmp_path, name: str, source: str):
    path = tmp_path / name
    path.write_text(source)
    return path
