"""The reward model as an MLflow pyfunc: a DataFrame with a `code` column in, one score per row out.

It embeds the code itself: the encoder's files are artifacts of the model (`encoder/`), so
`mlflow.pyfunc.load_model("models:/mlr-reward-<kind>@champion")` works in a fresh process with no
other set-up than the package installed. Behaviour features on the probe grid are computed in a
sandbox (the code is never executed in the scoring process). Higher score = higher predicted B-WR.
"""
from __future__ import annotations

import json

import mlflow.pyfunc
import numpy as np


class RewardModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        import xgboost as xgb

        from .embed import Encoder
        from .ranker import Features

        with open(context.artifacts["meta"]) as fh:
            self.meta = json.load(fh)
        algorithm = self.meta["algorithm"]
        self.model = xgb.XGBRanker() if algorithm == "ranker" else xgb.XGBRegressor()
        self.model.load_model(context.artifacts["xgb"])
        self.features = Features(**self.meta["features"])
        self.encoder = Encoder(self.meta["encoder"], path=context.artifacts["encoder"])
        self.ensemble = None  # versions from before ensembles have none: their spread is 0
        if "ensemble" in context.artifacts:
            from .ensemble import Ensemble

            self.ensemble = Ensemble.load(context.artifacts["ensemble"])

    def embed(self, sources: list[str]) -> np.ndarray:
        """The encoder's vectors (used by rounds for the diversity rule)."""
        return self.encoder.embed(sources)

    def feature_matrix(self, sources: list[str]) -> np.ndarray:
        from ..hypothesis import normalized_sha256

        return self.features.matrix(self.meta["kind"], sources,
                                    [normalized_sha256(s) for s in sources], self.encoder)

    def score_with_spread(self, sources: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(score, spread) per source from the bootstrap ensemble (standardised units, higher =
        better); without an ensemble, the point score and zero spread."""
        X = self.feature_matrix(sources)
        if self.ensemble is None:
            return np.asarray(self.model.predict(X), dtype=np.float64), np.zeros(len(sources))
        score, spread = self.ensemble.predict(X)
        return np.asarray(score, np.float64), np.asarray(spread, np.float64)

    def refit(self, sources: list[str], targets, recent_weight: float = 2.0) -> None:
        """Learn from evaluations that arrived during a round (their validation targets,
        `ranker.selection_target`): the in-memory ensemble is refitted with them; the registered
        version is unchanged. Later `score_with_spread` calls use the refitted ensemble."""
        from .ensemble import refit

        if self.ensemble is None:
            raise ValueError("this reward model version has no ensemble to refit (train a new one)")
        self.ensemble = refit(self.ensemble, self.feature_matrix(list(sources)),
                              np.asarray(targets, np.float32), recent_weight=recent_weight)

    def predict(self, context, model_input, params=None):
        import pandas as pd

        from ..hypothesis import normalized_sha256

        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        if "code" not in frame.columns:
            raise ValueError("the reward model's input needs a 'code' column of hypothesis sources")
        sources = [str(c) for c in frame["code"]]
        shas = [normalized_sha256(s) for s in sources]
        X = self.features.matrix(self.meta["kind"], sources, shas, self.encoder)
        return np.asarray(self.model.predict(X), dtype=np.float64)
