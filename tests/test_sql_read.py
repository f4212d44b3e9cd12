"""tracking/sql_read.py answers `is there a round to resume?` without MLflow, as MLflow's path does."""
import shutil
import sqlite3

from mlflow import MlflowClient

from mlr_mlflow.config import Config
from mlr_mlflow.round.resume import unfinished_round
from mlr_mlflow.tracking import names, sql_read

NAME = Config().experiment_name("activation")


def _both(uri, client, exp):
    light = sql_read.unfinished_round(uri, NAME)
    assert light == (unfinished_round(client, exp) is not None)
    return light


def test_the_light_read_agrees_with_mlflow_on_every_kind_of_round(any_store):
    assert sql_read.unfinished_round(any_store, NAME) is False  # nothing there yet, and nothing made
    client = MlflowClient(any_store)
    exp = client.create_experiment(NAME)
    assert _both(any_store, client, exp) is False
    done = client.create_run(exp, tags={names.ROLE: "round"}).info.run_id
    client.set_terminated(done)
    client.create_run(exp, tags={names.ROLE: "hypothesis"})  # a RUNNING run that is not a round
    assert _both(any_store, client, exp) is False
    killed = client.create_run(exp, tags={names.ROLE: "round"}).info.run_id  # as a kill -9 leaves it
    assert _both(any_store, client, exp) is True
    client.set_terminated(killed, status="FAILED")  # failed on purpose: nothing to resume
    assert _both(any_store, client, exp) is False
    client.set_tag(killed, names.STATUS, "error")  # ended by an error: resumable
    assert _both(any_store, client, exp) is True
    client.delete_run(killed)
    assert _both(any_store, client, exp) is False
    client.delete_experiment(exp)
    assert sql_read.unfinished_round(any_store, NAME) is None  # deleted: MLflow's path decides


def test_what_it_cannot_vouch_for_is_left_to_mlflow(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    client.create_run(client.create_experiment(NAME), tags={names.ROLE: "round"})
    assert sql_read.unfinished_round(uri, NAME) is True
    other = tmp_path / "other.db"
    shutil.copy(tmp_path / "mlflow.db", other)
    with sqlite3.connect(other) as db:
        db.execute("UPDATE alembic_version SET version_num = 'abc123'")
    assert sql_read.unfinished_round(f"sqlite:///{other}", NAME) is None  # another schema revision
    assert sql_read.unfinished_round("http://127.0.0.1:5000", NAME) is None
    assert sql_read.unfinished_round("postgresql+nosuchdriver://u@127.0.0.1/db", NAME) is None
    assert sql_read.unfinished_round(f"sqlite:///{tmp_path}/no/such/dir/m.db", NAME) is None
    assert not (tmp_path / "absent.db").exists()
    assert sql_read.unfinished_round(f"sqlite:///{tmp_path}/absent.db", NAME) is False
    assert not (tmp_path / "absent.db").exists()  # reading never creates a store
