"""The adapter to MLflow's private API (tracking/mlflow_internals.py): an MLflow upgrade that moves
what it relies on fails here, by name, before bulk writes go wrong; and no other module reaches
MLflow's private API."""
import ast
import re
from pathlib import Path

from mlflow import MlflowClient

from mlr_mlflow.tracking import mlflow_internals as internals

PACKAGE = Path(__file__).resolve().parents[1] / "mlr_mlflow"
PRIVATE_MODULES = re.compile(r"^mlflow\.(store|server|utils)(\.|$)")


def test_the_private_models_bulk_writes_have_the_columns_it_fills():
    """A renamed or dropped column of MLflow's SQLAlchemy models would make bulk.py's batch insert
    fail (or fill the wrong thing) at run time; here it fails by name."""
    models = internals.models()
    missing = []
    for name, columns in internals.WRITTEN.items():
        table = getattr(models, name).__table__
        missing += [f"{name}.{c}" for c in columns if c not in table.columns]
    assert not missing, f"MLflow's models changed: {missing}; re-check tracking/bulk.py"


def test_the_store_schema_is_the_revision_bulk_was_checked_against(tmp_path):
    """A migration (a new NOT NULL column, a new table a run needs) shows as a new alembic head:
    bulk.py's rows must then be checked against the public calls again (tests/test_bulk.py)."""
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    client.search_experiments()  # creates and migrates the store
    store = internals.database_store(client)
    assert store is not None
    assert internals.schema_revision(store) == internals.TESTED_ALEMBIC_HEAD


def test_a_tracking_server_is_not_a_database_store_so_bulk_takes_the_public_path():
    assert internals.database_store(MlflowClient("http://127.0.0.1:9")) is None  # nothing is sent


def test_the_latest_metric_rule_is_mlflows_step_then_timestamp_then_value():
    from types import SimpleNamespace

    latest = SimpleNamespace(step=1, timestamp=100, value=0.5)
    assert internals.replaces_latest(2, 0, 0.0, latest)  # a later step wins, whatever its time
    assert internals.replaces_latest(1, 101, 0.0, latest)
    assert internals.replaces_latest(1, 100, 0.6, latest)
    assert not internals.replaces_latest(1, 100, 0.5, latest)  # strictly greater only
    assert not internals.replaces_latest(0, 999, 9.9, latest)


def test_no_other_module_reaches_mlflows_private_api():
    """mlflow.store, mlflow.server, mlflow.utils, a client's _tracking_client and underscore names
    imported from mlflow live in tracking/mlflow_internals.py only."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "mlflow_internals.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            where = f"{path.relative_to(PACKAGE)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mlflow"):
                if PRIVATE_MODULES.match(node.module) or any(a.name.startswith("_") for a in node.names):
                    found.append(f"{where} from {node.module} import ...")
            elif isinstance(node, ast.Import):
                found += [f"{where} import {a.name}" for a in node.names if PRIVATE_MODULES.match(a.name)]
            elif isinstance(node, ast.Attribute) and node.attr == "_tracking_client":
                found.append(f"{where} ._tracking_client")
    assert not found, "\n".join(found)
