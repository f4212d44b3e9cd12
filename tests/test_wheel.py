"""From a built wheel, in a fresh virtual environment, outside the checkout: every packaged file is
there, runs name their Project by package, and an audit re-executes a run with that installation."""
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .conftest import SWISH

ROOT = Path(__file__).resolve().parents[1]
PACKAGED = ("mlr_mlflow/resources/projects/evaluate/MLproject", "mlr_mlflow/resources/jobs/schedule.toml",
            "mlr_mlflow/resources/docker/sandbox/Dockerfile", "mlr_mlflow/generate/prompts/novelty.txt",
            "mlr_mlflow/resources/instrument/activation.json", "mlr_mlflow/resources/dashboards/page.html.j2",
            "mlr_mlflow/resources/dashboards/sections.html.j2", "mlr_mlflow/resources/dashboards/charts.toml")


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp / "dist"), str(ROOT)], check=True)
    [wheel] = (tmp / "dist").glob("mlr_mlflow-*.whl")
    # the dependencies (torch, mlflow...) come from this interpreter; the package from the wheel alone
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(tmp / "venv")], check=True)
    subprocess.run([str(tmp / "venv/bin/python"), "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                    str(wheel)], check=True)
    return wheel, tmp / "venv"


def run(venv, cwd, *args):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MLFLOW_TRACKING_URI")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run([str(venv / "bin/mlr-mlflow"), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def last_json(proc) -> dict:
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_wheel_carries_package_data_and_audits_outside_the_checkout(venv, tmp_path):
    wheel, env = venv
    names = set(zipfile.ZipFile(wheel).namelist())
    assert set(PACKAGED) <= names
    located = subprocess.run([str(env / "bin/python"), "-c", "import mlr_mlflow.resources as r; "
                              "print(r.project_dir())"], cwd=tmp_path, capture_output=True, text=True,
                             env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert Path(located.stdout.strip()).is_relative_to(env), located  # not the checkout's copy
    shipped = subprocess.run([str(env / "bin/python"), "-c", "from mlr_mlflow.suite_check.known import _shipped; "
                              "print(_shipped('activation')['full_noise_ceiling'])"], cwd=tmp_path,
                             capture_output=True, text=True,
                             env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert 0 < float(shipped.stdout.strip()) <= 1, shipped  # what a round states of the default suite

    (tmp_path / "swish.py").write_text(SWISH)
    (tmp_path / "c.toml").write_text('[suite]\ndatasets = ["iris"]\n')
    evaluated = run(env, tmp_path, "evaluate", "swish.py", "--kind", "activation", "--seeds", "1",
                    "--config", "c.toml", "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    run_id = last_json(evaluated)["run_id"]
    (tmp_path / "swish.py").write_text("def activation(x):\n    return x * 0\n")  # never read again
    (tmp_path / "c.toml").unlink()
    audited = run(env, tmp_path, "audit", run_id, "--json")
    assert audited.returncode == 0, audited.stderr
    out = last_json(audited)
    assert out["verdict"] == "reproduced" and out["max_abs_diff"] == 0.0

    status = run(env, tmp_path, "scheduler", "status", "--json")  # no jobs/schedule.toml here
    assert status.returncode == 0, status.stderr
    assert "packaged default" in status.stderr
    assert {j["id"] for j in last_json(status)["jobs"]} >= {"nightly-activation", "audit-sample-weekly"}
    init = run(env, tmp_path, "scheduler", "init", "--json")
    assert init.returncode == 0 and (tmp_path / "jobs/schedule.toml").is_file()
    again = run(env, tmp_path, "scheduler", "init")
    assert again.returncode == 2 and "exists already" in again.stderr
