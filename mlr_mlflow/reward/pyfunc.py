"""The reward model as an MLflow pyfunc: a DataFrame with a `code` column in, one score per row out.

It embeds the code itself: the encoder's files are artifacts of the model (`encoder/`), so
`mlflow.pyfunc.load_model("models:/mlr-reward-<kind>@champion")` works in a fresh process with no
other set-up than the package installed. Behaviour features on the probe grid are computed in a
sandbox (the code is never executed in the scoring process). Higher score = higher predicted B-WR.

Feature code is explicit and versioned. The package's code travels with each version
(`code/mlr_mlflow`, MLflow's code_paths) and `meta.json` records its digest (`code_digest`, a
sha256 over its .py files) and `package_version`. A fresh process imports that copy. A process
that already imported another `mlr_mlflow` (a newer one, whose features may differ) would use its
own: so when the digests differ, the model imports its own copy under a versioned name
(`mlr_mlflow_<digest[:12]>`) and computes features with it (its sandbox runs that copy too). An old
champion thus keeps scoring with the code it was built with, in any process.

Invalid input: a row whose code is not a valid hypothesis of the model's kind (not Python, fails
the static checks, or fails in the sandbox while its behaviour is measured) scores NaN (over REST,
`NaN` in the JSON predictions), never a number. So does a row whose behaviour could not be measured
in time (`rows`): each row is measured on its own, within `limits.row_s`, so no score depends on
the machine's load or on the other rows; `params={"details": true}` returns `score`, `measured`
and `reason` per row instead. A request holds at most `limits.max_rows` rows (more: 400) and its
measurements end after `limits.request_s` seconds (the rows left: unmeasured). The limits are the
version's meta.json `limits` (`rows.ScoringLimits`).
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import logging
import sys
from pathlib import Path

import mlflow.pyfunc
import numpy as np

from .rows import ScoringLimits

log = logging.getLogger(__name__)
PACKAGE_DIR = Path(__file__).resolve().parents[1]
INVALID_SCORE = float("nan")


def code_digest(package_dir: Path) -> str:
    """sha256 over the package's .py files (relative path and content), in a fixed order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(package_dir).rglob("*.py") if "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(package_dir).as_posix()).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def code_identity() -> dict:
    """What meta.json records about the feature code a model is built with."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        package_version = version("mlr-mlflow")
    except PackageNotFoundError:  # a source checkout that was never installed
        package_version = "unknown"
    return {"code_digest": code_digest(PACKAGE_DIR), "package_version": package_version}


def _import_as(name: str, directory: Path):
    """The package in `directory` imported as `name` (its relative imports stay inside it)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, directory / "__init__.py",
                                                  submodule_search_locations=[str(directory)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def feature_package(model_dir: Path, meta: dict) -> str:
    """The name of the package to compute features with: this process's `mlr_mlflow` when it is
    the code the model was built with, else the model's own copy under a versioned name."""
    vendored = Path(model_dir) / "code" / "mlr_mlflow"
    if not (vendored / "__init__.py").is_file():
        log.warning("reward model: no code/mlr_mlflow in %s; scoring with the installed package, "
                    "whose features may differ from the model's", model_dir)
        return __package__.rpartition(".")[0]
    digest = code_digest(vendored)
    if meta.get("code_digest") and meta["code_digest"] != digest:
        log.warning("reward model: its code/mlr_mlflow (digest %s) is not the code it was built "
                    "with (%s)", digest[:12], meta["code_digest"][:12])
    if digest == code_digest(PACKAGE_DIR):
        return __package__.rpartition(".")[0]
    name = f"mlr_mlflow_{digest[:12]}"
    _import_as(name, vendored)
    return name


# a feature module's place in a package copy, then its place before `reward/features/` (older versions)
FEATURE_MODULES = {"structural": ("reward.features.structural", "reward.features"),
                   "grid": ("reward.features.grid", "reward.grid"),
                   "embed": ("reward.features.embed", "reward.embed")}


def feature_module(package: str, name: str):
    """A feature module of `package` (this one or a model version's own copy), where it lives in
    that copy: versions saved before `reward/features/` keep theirs in `reward/`."""
    new, old = FEATURE_MODULES[name]
    try:
        return importlib.import_module(f"{package}.{new}")
    except ModuleNotFoundError as exc:
        if exc.name is None or not f"{package}.{new}".startswith(exc.name):
            raise
        return importlib.import_module(f"{package}.{old}")


def invalid_input(message: str) -> Exception:
    """An error `mlflow models serve` answers with 400 (bad request), not 500."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


class RewardModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        import xgboost as xgb

        from .serving import guard_json_decoding

        guard_json_decoding()  # served: a request nested too deeply is a 400, not a 500

        with open(context.artifacts["meta"]) as fh:
            self.meta = json.load(fh)
        model_dir = Path(context.artifacts["meta"]).resolve().parents[1]  # <model>/artifacts/meta.json
        self.package = feature_package(model_dir, self.meta)
        ranker = importlib.import_module(f"{self.package}.reward.ranker")
        embed = feature_module(self.package, "embed")
        algorithm = self.meta["algorithm"]
        self.model = xgb.XGBRanker() if algorithm == "ranker" else xgb.XGBRegressor()
        self.model.load_model(context.artifacts["xgb"])
        self.features = ranker.Features(**self.meta["features"])
        self.encoder = embed.Encoder(self.meta["encoder"], path=context.artifacts["encoder"])
        self.limits = ScoringLimits.from_meta(self.meta)
        self.ensemble = None  # versions from before ensembles have none: their spread is 0
        if "ensemble" in context.artifacts:
            ensemble = importlib.import_module(f"{self.package}.reward.ensemble")
            self.ensemble = ensemble.Ensemble.load(context.artifacts["ensemble"])

    def embed(self, sources: list[str]) -> np.ndarray:
        """The encoder's vectors (used by rounds for the diversity rule)."""
        return self.encoder.embed(sources)

    def _invalid(self, kind: str, sources: list[str], X: np.ndarray) -> np.ndarray:
        """Rows that are no valid hypothesis: statically rejected, or (with grid features) every
        behaviour feature missing, which means the code failed in the sandbox."""
        validate = importlib.import_module(f"{self.package}.validate")
        kinds = importlib.import_module(f"{self.package}.kinds")
        invalid = np.array([bool(validate.check_static(s, kinds.get_kind(kind))) for s in sources])
        if self.features.grid:
            grid = feature_module(self.package, "grid")
            features = feature_module(self.package, "structural")
            start = len(features.NAMES) if self.features.structural else 0
            block = X[:, start:start + grid.SIZES[kind]]
            invalid |= np.isnan(block).all(axis=1)
        return invalid

    def feature_matrix(self, sources: list[str]) -> np.ndarray:
        return self._measure(sources)[0]

    def _measure(self, sources: list[str], budget=None):
        """(features, unmeasured reasons) with the model's own feature code; a version whose code
        predates per-row limits measures in one batch and reports nothing unmeasured."""
        hypothesis = importlib.import_module(f"{self.package}.hypothesis")
        shas = [hypothesis.normalized_sha256(s) for s in sources]
        if not hasattr(self.features, "measure"):
            return (self.features.matrix(self.meta["kind"], sources, shas, self.encoder),
                    [None] * len(sources))
        return self.features.measure(self.meta["kind"], sources, shas, self.encoder,
                                     limits=self.limits, budget=budget)

    def score_rows(self, sources: list[str], budget=None):
        """A DataFrame, one row per source: `score` (NaN unless measured and valid), `measured`
        (False when its behaviour could not be measured in time: no score is guessed) and
        `reason` (why there is no score; "" when there is one)."""
        import pandas as pd

        if not sources:
            return pd.DataFrame({"score": np.zeros(0), "measured": np.zeros(0, bool), "reason": []})
        too_long = [len(s) > self.limits.max_code_chars for s in sources]
        # never parsed nor run: scored as the empty source is, then marked unmeasured below
        X, unmeasured = self._measure(["" if long else s for s, long in zip(sources, too_long)],
                                      budget)
        unmeasured = [f"not measured: longer than {self.limits.max_code_chars} characters (reward "
                      "limits.max_code_chars)" if long else why for why, long in zip(unmeasured, too_long)]
        sources = ["" if long else s for s, long in zip(sources, too_long)]
        scores = np.asarray(self.model.predict(X), dtype=np.float64)
        invalid = self._invalid(self.meta["kind"], sources, X)
        reasons = [why or ("not a valid hypothesis of this kind, or its code failed when measured"
                           if bad else "") for why, bad in zip(unmeasured, invalid)]
        scores[invalid | np.array([bool(w) for w in unmeasured], dtype=bool)] = INVALID_SCORE
        if any(unmeasured):
            log.warning("reward model: %d of %d rows not scored: %s", sum(map(bool, unmeasured)),
                        len(sources), next(w for w in unmeasured if w))
        return pd.DataFrame({"score": scores, "measured": [not w for w in unmeasured],
                             "reason": reasons})

    def score_with_spread(self, sources: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(score, spread) per source from the bootstrap ensemble (standardised units, higher =
        better); without an ensemble, the point score and zero spread. An invalid row, or one
        whose behaviour could not be measured in time: NaN, NaN."""
        X, unmeasured = self._measure(sources)
        if self.ensemble is None:
            score, spread = np.asarray(self.model.predict(X), dtype=np.float64), np.zeros(len(sources))
        else:
            score, spread = (np.asarray(v, np.float64) for v in self.ensemble.predict(X))
        invalid = self._invalid(self.meta["kind"], sources, X)
        invalid |= np.array([bool(w) for w in unmeasured], dtype=bool)
        score[invalid], spread[invalid] = INVALID_SCORE, INVALID_SCORE
        return score, spread

    def refit(self, sources: list[str], targets, recent_weight: float = 2.0) -> None:
        """Learn from evaluations that arrived during a round (their validation targets,
        `ranker.selection_target`): the in-memory ensemble is refitted with them; the registered
        version is unchanged. Later `score_with_spread` calls use the refitted ensemble."""
        ensemble = importlib.import_module(f"{self.package}.reward.ensemble")
        if self.ensemble is None:
            raise ValueError("this reward model version has no ensemble to refit (train a new one)")
        self.ensemble = ensemble.refit(self.ensemble, self.feature_matrix(list(sources)),
                                       np.asarray(targets, np.float32), recent_weight=recent_weight)

    def predict(self, context, model_input, params=None):
        """One score per row (NaN: no score, see `score_rows`); with params {"details": true}, the
        DataFrame of `score_rows`. One request measures at most `limits.max_rows` rows, within
        `limits.request_s` seconds in all (rows left over are unmeasured)."""
        import pandas as pd

        from .rows import Budget

        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        if "code" not in frame.columns:
            raise invalid_input("the reward model's input needs a 'code' column of hypothesis sources")
        if len(frame) > self.limits.max_rows:
            raise invalid_input(f"{len(frame)} rows in one request; at most {self.limits.max_rows} "
                                "(reward limits.max_rows): send them in several requests")
        sources = [c if isinstance(c, str) else "" for c in frame["code"]]
        rows = self.score_rows(sources, Budget(self.limits.request_s))
        if (params or {}).get("details"):
            return rows
        return rows["score"].to_numpy(dtype=np.float64)
