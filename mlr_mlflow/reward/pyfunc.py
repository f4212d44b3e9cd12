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

    def embed(self, sources: list[str]) -> np.ndarray:
        """The encoder's vectors (used by rounds for the diversity rule)."""
        return self.encoder.embed(sources)

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
