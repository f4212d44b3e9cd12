"""Prompt templates (files a user can edit) and how they are filled in.

Two styles from the seed paper: *incremental* (improve on the best known hypotheses, shown with
their scores) and *novelty* (propose something unlike the known ones, built-in components included).
Templates are `string.Template` text ($component, $signature, $contract, $modules, $baselines,
$examples, $extras: rejections' reasons and papers' passages, prompt_extras.py);
`LLMConfig.prompt_dir` points at a directory with your own incremental.txt/novelty.txt.
"""
from __future__ import annotations

import random
from pathlib import Path
from string import Template

from ..kinds import get_kind
from . import Context, Known
from ..config import UsageError

STYLES = ("incremental", "novelty")
SHOWN = 4  # known hypotheses shown in a prompt: an incremental prompt's parents
BUILTIN_DIR = Path(__file__).resolve().parent / "prompts"

DESCRIPTIONS = {
    "activation": ("activation function", "def activation(x)",
                   "x is a float tensor of any shape; return a tensor of the same shape, "
                   "differentiable.", "torch, torch.nn.functional as F and math"),
    "preprocessing": ("preprocessing function", "def preprocess(X_train, X_test)",
                      "Both are float numpy arrays (rows = samples); return a pair of arrays with "
                      "the same row counts, computing every statistic from X_train only.",
                      "numpy as np and math"),
    "regularizer": ("regularizer", "def regularizer(params)",
                    "params is a list of the model's weight tensors; return a scalar tensor that is "
                    "added to the training loss.", "torch, torch.nn.functional as F and math"),
}


class PromptError(UsageError):
    """A template file is missing or names an unknown placeholder (a configuration error)."""


def load_template(style: str, prompt_dir: str = "") -> Template:
    if style not in STYLES:
        raise PromptError(f"unknown prompt style {style!r} (choose from {', '.join(STYLES)})")
    path = Path(prompt_dir or BUILTIN_DIR) / f"{style}.txt"
    if not path.is_file():
        raise PromptError(f"prompt template not found: {path}")
    return Template(path.read_text())


def _format(examples: list[tuple[str, str]]) -> str:
    return "\n\n".join(f"# {label}\n```python\n{source.strip()}\n```" for label, source in examples)


def render(style: str, context: Context, prompt_dir: str = "", shown: int = SHOWN,
           rng: random.Random | None = None) -> str:
    """The prompt text for one request."""
    from ..config import DEFAULT_KINDS

    kind = get_kind(context.kind)
    component, signature, contract, modules = DESCRIPTIONS[kind.name]
    sets = DEFAULT_KINDS[kind.name]
    builtins = [(f"built-in {name}", kind.component(name)) for name in (*sets.baselines, *sets.sota)]
    known: list[Known] = list(context.known)
    if style == "incremental":
        examples = [(f"B-WR {k.b_wr:.3f}", k.source) for k in known[:shown]] or \
                   [(f"{label} (baseline or state of the art; score not yet measured)", src)
                    for label, src in builtins[:shown]]
    else:
        rng = rng or random.Random(context.seed)
        pool = [(f"known (B-WR {k.b_wr:.3f})", k.source) for k in known]
        examples = builtins + rng.sample(pool, min(shown, len(pool)))
    from .prompt_extras import extras, place

    template, extra = load_template(style, prompt_dir), extras(context)
    try:
        return place(template.template, template.substitute(
            component=component, signature=signature, contract=contract, modules=modules,
            baselines=", ".join(sets.baselines), examples=_format(examples), extras=extra), extra)
    except (KeyError, ValueError) as exc:
        raise PromptError(f"prompt template {style}.txt: bad placeholder {exc}") from None
