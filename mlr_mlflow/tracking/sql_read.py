"""Read-only answers from a SQL tracking store without importing MLflow.

Importing MLflow's client with its SQLAlchemy store takes about 2.5 s of CPU; a command that may
answer before doing any work (`discover --resume` with nothing to resume) asks here first, with
SQLAlchemy alone. Only MLflow's tables `experiments`, `runs` and `tags` are read, and only from a
database whose schema is at the revision the package was tested against
(`mlflow_internals.TESTED_ALEMBIC_HEAD`, pinned by tests/test_mlflow_internals.py). Anything else
(an HTTP server, another revision, a database that cannot be opened) answers None: ask MLflow.
"""
from __future__ import annotations

from pathlib import Path

from . import names
from .mlflow_internals import TESTED_ALEMBIC_HEAD

NEWEST_ROUNDS = 50  # as many as `resume.unfinished_round` looks through


def _engine(uri: str):
    """A read-only engine for a sqlite file or PostgreSQL database; None for anything else, and
    for a sqlite file that does not exist (reading must not create it)."""
    from sqlalchemy import create_engine

    if uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///"):].split("?")[0])
        if not path.is_file():
            return None
        return create_engine(f"sqlite:///file:{path.resolve()}?mode=ro&uri=true")
    if uri.startswith(("postgresql://", "postgresql+psycopg2://")):
        return create_engine(uri, connect_args={"options": "-c default_transaction_read_only=on"})
    return None


def unfinished_round(uri: str, experiment_name: str) -> bool | None:
    """Whether the experiment's newest rounds hold one that did not finish, by the rule of
    `round.resume.unfinished_round`: not FINISHED, and not FAILED on purpose (a FAILED round whose
    `mlr.status` is `error` is unfinished). False when the store or the experiment does not exist
    yet; None when this cannot be read here (ask MLflow)."""
    if not uri.startswith(("sqlite:///", "postgresql")):
        return None
    try:
        from sqlalchemy import text
        from sqlalchemy.exc import SQLAlchemyError
    except ImportError:
        return None
    try:
        engine = _engine(uri)
    except Exception:  # a driver that is not installed, a URI SQLAlchemy cannot parse: MLflow's path says why
        return None
    if engine is None:  # no such sqlite file: nothing in it, unless its folder is missing (an error MLflow's path names)
        local = uri.startswith("sqlite:///") and Path(uri[len("sqlite:///"):].split("?")[0]).parent.is_dir()
        return False if local else None
    try:
        with engine.connect() as conn:
            tables = {"alembic_version", "experiments", "runs", "tags"}
            if uri.startswith("sqlite:///"):
                found = {r[0] for r in conn.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))}
            else:
                found = {r[0] for r in conn.execute(text(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"))}
            if not found:
                return False  # an empty database: MLflow has not made its tables yet
            if not tables <= found:
                return None
            if conn.execute(text("SELECT version_num FROM alembic_version")).scalar() != TESTED_ALEMBIC_HEAD:
                return None
            exp = conn.execute(text("SELECT experiment_id, lifecycle_stage FROM experiments WHERE name = :n"),
                               {"n": experiment_name}).first()
            if exp is None:
                return False
            if exp[1] != "active":
                return None  # a deleted experiment: MLflow's path restores it and looks there
            rows = conn.execute(text(
                "SELECT r.status, (SELECT s.value FROM tags s WHERE s.run_uuid = r.run_uuid AND s.key = :status) "
                "FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid AND t.key = :role AND t.value = 'round' "
                "WHERE r.experiment_id = :exp AND r.lifecycle_stage = 'active' "
                "ORDER BY r.start_time DESC LIMIT :limit"),
                {"status": names.STATUS, "role": names.ROLE, "exp": exp[0], "limit": NEWEST_ROUNDS}).all()
    except SQLAlchemyError:
        return None
    finally:
        engine.dispose()
    return any(not (status == "FINISHED" or (status == "FAILED" and tag != "error")) for status, tag in rows)
