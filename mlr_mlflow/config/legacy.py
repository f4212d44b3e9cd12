"""What a recorded effective config (a run's `config.json`) meant when it was written: keys added
since are filled in with the meaning the record had, so old runs read and audit as they ran."""
from __future__ import annotations

# a [model] table as every run records it (dataclasses.asdict), from before `one_pass_lr` existed
_RECORDED_MODEL = frozenset({"hidden", "lr", "batch_size", "max_epochs", "patience"})


def as_recorded(data: dict) -> dict:
    """`data` with what the record predates filled in: a complete [model] table without
    `one_pass_lr` (before the key existed), or with it unset (a config no kind resolved), trained
    one-pass at its `lr`."""
    if isinstance(data, dict) and isinstance(data.get("model"), dict):
        model = data["model"]
        if model.get("one_pass_lr") is None and _RECORDED_MODEL <= set(model):
            return {**data, "model": {**model, "one_pass_lr": model["lr"]}}
    return data
