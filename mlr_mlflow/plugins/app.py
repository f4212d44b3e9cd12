"""The `mlflow.app` plugins: `mlflow server --app-name mlr` (or `mlr-basic-auth`).

Both give MLflow's own UI and API unchanged, plus the dashboard under `/mlr/`, built live from the
server's backend store on each request. MLflow 3.17 runs an app name's factory in each uvicorn
worker (`--factory`) and serves the Flask app inside FastAPI, so a factory adds its route to
MLflow's Flask app and hands back what `mlflow.server.fastapi_app.create_fastapi_app` makes of it
(the Flask app itself under gunicorn or waitress). `mlr-basic-auth` hands the same Flask app to
MLflow's basic-auth factory, which wraps it likewise: `/mlr/` then needs a login like every page.
MLflow fails closed on routes it does not know (only admins may open `/mlr/`) unless
MLFLOW_BASIC_AUTH_FAIL_CLOSED=false; then a user who is not an admin sees only the experiments and
reward models they may read.

This module is the one place that touches MLflow's server internals.
"""
from __future__ import annotations

import os
from urllib.parse import urlparse

ROUTE = "/mlr/"
# MLflow 3.17's UI keeps its page settings in the browser's localStorage. It chooses between its
# GenAI pages and the runs table from `mlflow.workflowType_v1` (default GenAI), not from the
# experiment tag `mlflow.experimentKind`, and shows no metric column until one is picked. So the
# index page seeds, where the browser has no setting of its own yet: "Model training", and for each
# of our experiments the columns B-WR, BSOTA-WR, generator, variant and status with the newest
# round expanded. A user's own later choices are kept.
COLUMNS = ["metrics.`b_wr`", "metrics.`bsota_wr`", "tags.`mlr.generator`", "tags.`mlr.variant`",
           "tags.`mlr.status`"]
SEED_JS = """<script>(function(){try{var s=window.localStorage,seed=%s;
function put(k,v){if(s.getItem(k)===null)s.setItem(k,v);}
put('mlflow.workflowType_v1','"machine_learning"');
put('mlflow.assistant.panelOpen_v1','false');put('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1','true');
Object.keys(seed).forEach(function(id){var st={selectedColumns:%s,runsExpanded:{}};
if(seed[id])st.runsExpanded[seed[id]]=true;
put('MLflowLocalStorage-1.1-ExperimentPage-'+JSON.stringify([id])+'-ReactComponentState',JSON.stringify(st));});
}catch(e){}})();</script>"""


def _seed_script() -> str:
    """The seeding script, with our experiments and each one's newest round."""
    import json

    from ..tracking import names
    from ..tracking.queries import round_runs

    seed = {}
    try:
        client = _store_client()
        may_read = _read_filter()
        for exp in client.search_experiments(
                filter_string=f"tags.`{names.EXPERIMENT_KIND}` = '{names.MODEL_DEVELOPMENT}'"):
            if may_read and not may_read.experiment(exp.experiment_id):
                continue  # under basic auth: not even the ids of what this user may not read
            rounds = round_runs(client, exp.experiment_id, newest_first=True, limit=1)
            seed[exp.experiment_id] = rounds[0].info.run_id if rounds else ""
    except Exception:  # the UI still opens; only the seeded columns are missing
        pass
    return SEED_JS % (json.dumps(seed), json.dumps(COLUMNS))


def _store_client():
    from mlflow import MlflowClient
    from mlflow.server.constants import BACKEND_STORE_URI_ENV_VAR, REGISTRY_STORE_URI_ENV_VAR

    uri = os.environ[BACKEND_STORE_URI_ENV_VAR]
    return MlflowClient(tracking_uri=uri,
                        registry_uri=os.environ.get(REGISTRY_STORE_URI_ENV_VAR) or uri)


def _reader(client):
    """Artifacts as the server itself reads them (`mlflow-artifacts:` URIs name its destination)."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    def read(run_id: str, path: str) -> str | None:
        import tempfile
        from pathlib import Path

        try:
            uri = client.get_run(run_id).info.artifact_uri
            if uri.startswith("mlflow-artifacts:"):
                from mlflow.server.handlers import _get_artifact_repo_mlflow_artifacts

                repo, rel = _get_artifact_repo_mlflow_artifacts(), urlparse(uri).path.lstrip("/")
                path = f"{rel}/{path}"
            else:
                repo = get_artifact_repository(uri)
            with tempfile.TemporaryDirectory() as tmp:
                return Path(repo.download_artifacts(path, tmp)).read_text()
        except Exception:  # the page says the code is not readable
            return None
    return read


class _ReadFilter:
    """What the logged-in user may read, asked of MLflow's auth store."""

    def __init__(self, auth, user: str):
        self.auth, self.user = auth, user

    def experiment(self, experiment_id: str) -> bool:
        return self.auth._graphql_can_read_experiment(experiment_id, self.user)

    def model(self, name: str) -> bool:
        return self.auth._graphql_can_read_model(name, self.user)


class _Access:
    """What the logged-in user may do in the review queue (plugins/review.py): read and edit an
    experiment, asked of MLflow's auth store (EDIT or MANAGE edits); everything without basic auth."""

    def __init__(self):
        import sys

        auth = sys.modules.get("mlflow.server.auth")  # imported only by the basic-auth factory
        self.auth = auth if auth is not None and auth.is_auth_enabled() else None
        self.user = self.auth.authenticate_request().username if self.auth else "anonymous"
        self.admin = bool(self.auth) and self.auth.sender_is_admin()

    def _permission(self, experiment_id: str):
        return self.auth._graphql_get_permission_for_experiment(experiment_id, self.user)

    def readable(self, experiment_id: str) -> bool:
        return not self.auth or self.admin or self._permission(experiment_id).can_read

    def editable(self, experiment_id: str) -> bool:
        return not self.auth or self.admin or self._permission(experiment_id).can_update


def _read_filter() -> _ReadFilter | None:
    """Under basic auth, the logged-in user's read permissions; None where everything is readable
    (no basic auth, or an admin)."""
    import sys

    auth = sys.modules.get("mlflow.server.auth")  # imported only by the basic-auth factory
    if auth is None or not auth.is_auth_enabled() or auth.sender_is_admin():
        return None
    return _ReadFilter(auth, auth.authenticate_request().username)


def _visible_to_user(snap) -> None:
    """Under basic auth: keep what the logged-in user may read (admins read everything)."""
    may_read = _read_filter()
    if may_read is None:
        return
    readable = {e for e in snap.experiments if may_read.experiment(e)}
    snap.experiments = {e: n for e, n in snap.experiments.items() if e in readable}
    snap.runs = [r for r in snap.runs if r["experiment_id"] in readable]
    snap.reward_versions = [v for v in snap.reward_versions if may_read.model(v["model"])]


def dashboard_view():
    from flask import Response

    from ..dashboard import render
    from ..tracking.dashboard_queries import snapshot

    client = _store_client()
    snap = snapshot(client, _reader(client))
    _visible_to_user(snap)
    # relative: the MLflow UI is one level up, behind any host name or --static-prefix
    return Response(render(snap, "../"), mimetype="text/html")


def index_view():
    """MLflow's own index.html, opening experiments on the runs table by default."""
    from pathlib import Path

    from flask import Response, current_app

    page = Path(current_app.static_folder, "index.html").read_text()
    return Response(page.replace("<head>", "<head>" + _seed_script(), 1), mimetype="text/html")


def _add_routes(flask_app) -> None:
    from flask import redirect
    from mlflow.server.handlers import _add_static_prefix

    if "mlr_dashboard" in flask_app.view_functions:  # a second factory call in one process
        return
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    route = _add_static_prefix(ROUTE)
    flask_app.add_url_rule(route, "mlr_dashboard", dashboard_view)
    flask_app.add_url_rule(route.rstrip("/"), "mlr_dashboard_slash", lambda: redirect(route))
    from .review import register as review_queue

    review_queue(flask_app, route + "review", _store_client, _reader, _Access)
    if "serve" in flask_app.view_functions:
        flask_app.view_functions["serve"] = index_view


def _served(flask_app):
    from mlflow.environment_variables import _MLFLOW_SGI_NAME

    if _MLFLOW_SGI_NAME.get() == "uvicorn":
        from mlflow.server.fastapi_app import create_fastapi_app

        return create_fastapi_app(flask_app)
    return flask_app


def create_app():
    """`mlflow server --app-name mlr`: the MLflow UI plus the dashboard under /mlr/."""
    from mlflow.server import app as flask_app

    _add_routes(flask_app)
    return _served(flask_app)


def create_basic_auth_app():
    """`mlflow server --app-name mlr-basic-auth`: the same, behind MLflow's basic auth."""
    from mlflow.server import app as flask_app
    from mlflow.server.auth import create_app as basic_auth

    _add_routes(flask_app)
    return basic_auth(flask_app)
