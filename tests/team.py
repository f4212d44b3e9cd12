"""Real team infrastructure for tests/test_team_server.py and tests/test_ray.py (shared, started once
per session): `mlflow server` on a fresh PostgreSQL database with basic auth and proxied artifacts,
and a Ray cluster of a head and a second node, each its own `ray start --block` process group with
token authentication. Redis holds 6379 here, so every port is a free one picked at start.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import tempfile
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
ADMIN_PASSWORD = "team-admin-" + secrets.token_hex(8)
WORKER_USER, WORKER_PASSWORD = "worker", "team-worker-" + secrets.token_hex(8)
SMALL_TOML = '[suite]\ndatasets = ["iris"]\n[confirm]\nenabled = false\n'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _psql(statement: str) -> None:
    import sqlalchemy

    engine = sqlalchemy.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sqlalchemy.text(statement))
    engine.dispose()


@contextlib.contextmanager
def fresh_databases(*suffixes: str):
    """Fresh PostgreSQL databases (one per suffix) -> their SQLAlchemy URLs; dropped after."""
    base = f"mlr_test_{secrets.token_hex(4)}"
    names = [f"{base}_{s}" for s in suffixes]
    try:
        import sqlalchemy

        with sqlalchemy.create_engine(PG_ADMIN).connect():
            pass
    except Exception as exc:
        pytest.skip(f"no PostgreSQL at 127.0.0.1:5432 ({type(exc).__name__})")
    for name in names:
        _psql(f"CREATE DATABASE {name}")
    try:
        yield [f"postgresql+psycopg2://postgres@127.0.0.1:5432/{n}" for n in names]
    finally:
        for name in names:
            _psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _wait_http(url: str, proc, log: Path, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except (urllib.error.URLError, ConnectionError, OSError):
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"{url} did not answer"
            time.sleep(0.5)


def _stop(proc, sig=signal.SIGTERM) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@dataclass
class TeamServer:
    url: str
    store: str  # the backend store's PostgreSQL URL (the server's secret, never the clients')
    jobs_store: str  # the scheduler's job store, on the same PostgreSQL
    where: Path
    admin: dict = field(default_factory=dict)  # MLFLOW_TRACKING_USERNAME / _PASSWORD
    worker: dict = field(default_factory=dict)


@contextlib.contextmanager
def team_server(where: Path):
    """`mlflow server --app-name basic-auth --serve-artifacts` on PostgreSQL (runs and users)."""
    with fresh_databases("runs", "auth", "jobs") as (store, auth_db, jobs_db):
        ini = where / "basic_auth.ini"
        ini.write_text("[mlflow]\ndefault_permission = EDIT\n"
                       f"database_uri = {auth_db}\nadmin_username = admin\n"
                       "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
                       "auth_cache_ttl_seconds = 60\n")  # docs/deploy.md: one password check a minute
        port = free_port()
        env = {**os.environ, "MLFLOW_AUTH_CONFIG_PATH": str(ini),
               "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16),
               "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD,
               # MLflow's own background jobs (GenAI scorers): five more processes we do not use
               "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_URI"):
            env.pop(key, None)
        log = where / "mlflow-server.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", store,
             "--serve-artifacts", "--artifacts-destination", str(where / "artifacts"),
             "--app-name", "basic-auth", "--workers", "1", "--host", "127.0.0.1", "--port", str(port)],
            cwd=where, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_http(f"{url}/health", proc, log)
            admin = {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": ADMIN_PASSWORD}
            request = urllib.request.Request(
                f"{url}/api/2.0/mlflow/users/create", method="POST",
                data=json.dumps({"username": WORKER_USER, "password": WORKER_PASSWORD}).encode(),
                headers={"Content-Type": "application/json", "Authorization": _basic(admin)})
            urllib.request.urlopen(request, timeout=30).close()
            yield TeamServer(url, store, jobs_db, where, admin, {
                "MLFLOW_TRACKING_USERNAME": WORKER_USER, "MLFLOW_TRACKING_PASSWORD": WORKER_PASSWORD})
        finally:
            _stop(proc)


def _basic(credentials: dict) -> str:
    import base64

    pair = f"{credentials['MLFLOW_TRACKING_USERNAME']}:{credentials['MLFLOW_TRACKING_PASSWORD']}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


@dataclass
class RayCluster:
    address: str
    token: str
    env: dict  # what a node's processes (and its Ray workers) see
    where: Path
    nodes: dict = field(default_factory=dict)  # name -> the `ray start --block` process
    temp: str | None = None  # Ray's session directory (short: see start_node)

    def start_node(self, name: str, resources: dict, head: bool = False) -> None:
        ports = [free_port() for _ in range(7)]
        args = ["ray", "start", "--block", "--num-cpus", "1", "--disable-usage-stats",
                "--object-store-memory", str(80 * 1024 * 1024), "--resources", json.dumps(resources),
                "--node-manager-port", str(ports[0]), "--object-manager-port", str(ports[1]),
                "--runtime-env-agent-port", str(ports[2]), "--dashboard-agent-grpc-port", str(ports[3]),
                "--dashboard-agent-listen-port", str(ports[4]), "--metrics-export-port", str(ports[5]),
                "--min-worker-port", "0", "--max-worker-port", "0"]
        if head:
            # Ray's sockets live under --temp-dir, and an AF_UNIX path may not exceed 107 bytes:
            # pytest's (and pytest-xdist's) temporary directories are too deep for it
            self.temp = tempfile.mkdtemp(prefix="mlr-ray-", dir="/tmp")
            args += ["--head", "--port", self.address.rsplit(":", 1)[1], "--include-dashboard=false",
                     "--dashboard-port", str(ports[6]), "--temp-dir", self.temp]
        else:
            args += ["--address", self.address]
        log = self.where / f"ray-{name}.log"
        self.nodes[name] = subprocess.Popen(args, cwd=self.where, env=self.env, stdout=open(log, "w"),
                                            stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self, name: str) -> None:
        """The node dies at once: its raylet, its Ray workers and their sandboxes, all SIGKILLed."""
        proc = self.nodes.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def node_ids(self, ray) -> dict:
        """Resource name -> the id of the alive node that declares it."""
        out = {}
        for node in ray.nodes():
            if node["Alive"]:
                for resource in node["Resources"]:
                    out.setdefault(resource, node["NodeID"])
        return out

    def wait_for(self, ray, resource: str, seconds: float = 120) -> str:
        deadline = time.monotonic() + seconds
        while resource not in self.node_ids(ray):
            assert time.monotonic() < deadline, f"no Ray node with {resource} joined"
            time.sleep(0.5)
        return self.node_ids(ray)[resource]


@contextlib.contextmanager
def ray_cluster(where: Path, worker_credentials: dict):
    """A head and a second node (one CPU each, both able to sandbox), token auth on; this process
    is connected to it as the driver, with the same token, as `discover --executor ray` would be."""
    token = secrets.token_hex(16)
    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    # before Ray is imported: its configuration (the auth mode among it) is read at import
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)
    ray = pytest.importorskip("ray")
    ray._raylet.Config.initialize("")  # in case Ray was imported earlier in this process
    env = {**os.environ, "RAY_AUTH_MODE": "token", "MLFLOW_HTTP_REQUEST_TIMEOUT": "120", "RAY_AUTH_TOKEN": token,
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
           # a dead node is noticed in about two seconds, not fifteen
           "RAY_health_check_period_ms": "500", "RAY_health_check_failure_threshold": "4",
           **worker_credentials}
    for key in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI"):
        env.pop(key, None)
    cluster = RayCluster(f"{ray.util.get_node_ip_address()}:{free_port()}", token, env, where)
    try:
        cluster.start_node("head", {"mlr_sandbox": 1, "mlr_head": 1}, head=True)
        # "mlr_kill": what the node-killing test's round asks for instead of mlr_sandbox
        cluster.start_node("second", {"mlr_sandbox": 1, "mlr_second": 1, "mlr_kill": 1})
        deadline = time.monotonic() + 120
        while True:
            assert cluster.nodes["head"].poll() is None, (where / "ray-head.log").read_text()[-3000:]
            try:
                ray.init(address=cluster.address, logging_level="WARNING", log_to_driver=False)
                break
            except Exception:
                assert cluster.nodes["head"].poll() is None, (where / "ray-head.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "the Ray head did not start"
                time.sleep(1)
        cluster.wait_for(ray, "mlr_second")
        yield cluster
    finally:
        ray.shutdown()
        for name in list(cluster.nodes):  # nothing to save: the whole node goes at once
            _stop(cluster.nodes.pop(name), signal.SIGKILL)
        if cluster.temp:
            shutil.rmtree(cluster.temp, ignore_errors=True)
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """The session's team server (TeamServer); slow machines get patient HTTP clients."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "120")
        mp.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
        with team_server(tmp_path_factory.mktemp("team")) as started:
            yield started


@pytest.fixture(scope="session")
def cluster(server, tmp_path_factory):
    """The session's Ray cluster (RayCluster), its workers logged in to the server as `worker`."""
    with ray_cluster(tmp_path_factory.mktemp("ray"), server.worker) as started:
        yield started
