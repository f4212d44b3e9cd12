"""Faults of a real store, for the resume tests: a real MlflowClient some of whose calls fail the
way a store can (refused, timed out), and tiny reward models registered for real in the registry."""
from __future__ import annotations

import mlflow.pyfunc
import numpy as np
from mlflow.exceptions import MlflowException


class Flaky:
    """Delegates everything to `client`; `faults` maps a method name to a function of the call's
    arguments that returns the exception to raise instead (or None: the call goes through).
    It hides the client's store, so our code takes it for a client without a database store (a
    tracking server's) and writes through the public calls, where the faults are: otherwise
    `tracking.bulk` would start and end runs in the database and never meet them."""

    def __init__(self, client, **faults):
        self.client, self.faults = client, faults

    def __getattr__(self, name):
        if name == "_tracking_client":
            raise AttributeError(name)
        attr = getattr(self.client, name)
        fault = self.faults.get(name)
        if fault is None:
            return attr

        def call(*args, **kwargs):
            exc = fault(*args, **kwargs)
            if exc is not None:
                raise exc
            return attr(*args, **kwargs)
        return call


def refused(what: str = "the store refused the request") -> MlflowException:
    return MlflowException(what, error_code="TEMPORARILY_UNAVAILABLE")


class LengthScorer(mlflow.pyfunc.PythonModel):
    """A reward model that prefers long (sign 1) or short (sign -1) code."""

    def __init__(self, sign: float):
        self.sign = sign

    def predict(self, context, model_input, params=None):
        return np.asarray([self.sign * len(code) for code in model_input["code"]], dtype=float)

    def embed(self, sources):
        return np.eye(len(sources), 4)  # all different: the diversity rule changes nothing


class RefitScorer(LengthScorer):
    """A LengthScorer whose preference turns round when refitted: a reward model whose ranking
    visibly changes with what a round teaches it (an in-memory refit, as the real ensemble's)."""

    ensemble = "refitted in memory"

    def refit(self, sources, targets):
        assert len(sources) == len(targets) and all(0 <= t <= 1 for t in targets)
        self.learned = getattr(self, "learned", 0) + len(sources)
        self.sign = -self.sign


def register_champion(tracking_uri: str, kind: str, sign: float, model=None) -> str:
    from mlflow import MlflowClient

    from mlr_mlflow.tracking.fluent import fluent_store

    name = f"mlr-reward-{kind}"
    with fluent_store(tracking_uri):
        info = mlflow.pyfunc.log_model(name="reward_model", python_model=model or LengthScorer(sign),
                                       registered_model_name=name)
    version = str(info.registered_model_version)
    MlflowClient(tracking_uri, registry_uri=tracking_uri).set_registered_model_alias(name, "champion", version)
    return version
