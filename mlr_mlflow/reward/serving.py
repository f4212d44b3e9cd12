"""A 400, not a 500, for JSON too deep to decode (`mlflow models serve` of a reward model).

MLflow decodes a request's JSON before the model sees it, and its decoder lets a RecursionError
(JSON nested deeper than Python's recursion limit) escape as an internal error, a 500. A request
is the client's input: `guard_json_decoding` makes that a 400 with a clear message, as MLflow does
for malformed JSON. It wraps `mlflow.pyfunc.scoring_server._decode_json_input` once per process
(the reward model calls it when it loads, which in a scoring server is before any request), and
changes nothing for well-formed input; where that function does not exist it does nothing. The
private function is reached only through tracking/mlflow_internals.py.
"""
from __future__ import annotations

import functools


def guard_json_decoding() -> bool:
    """Wrap the scoring server's JSON decoding (idempotent); True when it is wrapped."""
    from ..tracking.mlflow_internals import wrap_scoring_json_decoder

    return wrap_scoring_json_decoder(_guarded)


def _guarded(decode):
    @functools.wraps(decode)
    def guarded(json_input):
        try:
            return decode(json_input)
        except (RecursionError, MemoryError) as exc:
            from mlflow.exceptions import MlflowException
            from mlflow.protos.databricks_pb2 import BAD_REQUEST

            raise MlflowException(f"the request's JSON cannot be decoded: {type(exc).__name__} "
                                  "(nested too deeply or too large)", error_code=BAD_REQUEST) from None
    return guarded
