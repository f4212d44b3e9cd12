"""Shared fixtures: real sqlite MLflow stores in tmp_path, a small dataset suite, one sandbox."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlr_mlflow.config import Config, with_overrides
from mlr_mlflow.sandbox import SubprocessSandbox

SWISH = "import torch\n\ndef activation(x):\n    return x * torch.sigmoid(x)\n"
ZERO = "def activation(x):\n    return x * 0\n"
SMALL_SUITE = ("iris", "moons", "xor")
POSTGRES = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


def postgres_available() -> bool:
    try:
        import sqlalchemy

        with sqlalchemy.create_engine(POSTGRES).connect():
            return True
    except Exception:
        return False


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


@pytest.fixture(scope="session")
def rounds_store(tmp_path_factory) -> dict:
    """A store with two real, small discovery rounds of activations (the second breeds from the
    first), made by the CLI in its own directory: {"dir", "uri", "exp_id", "rounds"}.

    Built once per test session, not once per xdist worker: the first worker to need it builds it
    under a lock in the directory the workers share, the others read what it wrote (its tests only
    read the store)."""
    import json

    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # every worker's basetemp sits under the session's one
    where, done = shared / "rounds-shared", shared / "rounds-shared.json"
    with FileLock(str(shared / "rounds-shared.lock")):
        if not done.exists():
            _build_rounds_store(where)
            done.write_text(json.dumps(_read_rounds_store(where)))
    store = json.loads(done.read_text())
    return {**store, "dir": Path(store["dir"])}


def _build_rounds_store(where: Path) -> None:
    import shutil
    import subprocess
    import sys

    shutil.rmtree(where, ignore_errors=True)  # a build interrupted before its record
    where.mkdir(parents=True)
    (where / "small.toml").write_text('[suite]\ndatasets = ["iris", "moons"]\n')
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])}
    for _ in range(2):
        done = subprocess.run([sys.executable, "-m", "mlr_mlflow", "discover", "--kind", "activation",
                               "--n", "4", "--top-k", "1", "--seeds", "1", "--config", "small.toml",
                               "--tracking-uri", f"sqlite:///{where}/mlflow.db", "--json"], cwd=where,
                              env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        with (where / "rounds.jsonl").open("a") as record:
            record.write(done.stdout.strip().splitlines()[-1] + "\n")


def _read_rounds_store(where: Path) -> dict:
    import json

    from mlflow import MlflowClient

    uri = f"sqlite:///{where}/mlflow.db"
    rounds = [json.loads(line) for line in (where / "rounds.jsonl").read_text().splitlines()]
    exp_id = MlflowClient(uri).get_experiment_by_name("mlr-activation").experiment_id
    return {"dir": str(where), "uri": uri, "exp_id": exp_id, "rounds": rounds}


POSTGRES_SERVER = "postgresql+psycopg2://postgres@127.0.0.1:5432"


@pytest.fixture(params=["sqlite", "postgres"])
def any_store(request, tmp_path):
    """A fresh tracking store: sqlite in tmp_path, or a database of its own on the PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/mlflow.db"
        return
    import uuid

    import sqlalchemy

    name = f"mlr_{uuid.uuid4().hex[:10]}"
    try:
        admin = sqlalchemy.create_engine(f"{POSTGRES_SERVER}/test", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    except Exception:
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    yield f"{POSTGRES_SERVER}/{name}"
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()
