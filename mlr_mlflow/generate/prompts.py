"""Prompt templates (files a user can edit) and how they are filled in.

Two styles from the seed paper: *incremental* (improve on the best known hypotheses, shown with
their scores) and *novelty* (propose something unlike the known ones, built-in components included).
Templates are `string.Template` text ($component, $signature, $contract, $modules, $baselines,
$examples, $extras: rejections' reasons and papers' passages, prompt_extras.py);
`LLMConfig.prompt_dir` points at a directory with your own incremental.txt/novelty.txt.
"""
from __future__ import annotations

import random
import re
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


def registry_text(file_text: str) -> str:
    """A `string.Template` file ($var) in the Prompt Registry's syntax ({{var}})."""
    return re.sub(r"\$(\w+)", r"{{\1}}", file_text.replace("$$", "\0")).replace("\0", "$")


def fill(text: str, values: dict, label: str) -> str:
    """`text` with each {{name}} replaced; an unknown name is a PromptError naming `label`."""
    def one(match):
        if match.group(1) not in values:
            raise PromptError(f"prompt template {label}: bad placeholder {match.group(1)!r} "
                              f"(known: {', '.join(sorted(values))})")
        return str(values[match.group(1)])

    return re.sub(r"\{\{\s*(\w+)\s*\}\}", one, text)


def values(style: str, context: Context, shown: int = SHOWN,
           rng: random.Random | None = None) -> dict:
    """What fills a template of `style` for one request: the kind's description and examples."""
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
    from .prompt_extras import extras

    return dict(component=component, signature=signature, contract=contract, modules=modules,
                baselines=", ".join(sets.baselines), examples=_format(examples),
                extras=extras(context))


def render(style: str, context: Context, prompt_dir: str = "", shown: int = SHOWN,
           rng: random.Random | None = None) -> str:
    """The prompt text for one request, from the template file of `style`."""
    load_template(style, prompt_dir)  # a missing file or unknown style is a PromptError
    from .prompt_extras import extras, place

    raw = (Path(prompt_dir or BUILTIN_DIR) / f"{style}.txt").read_text()
    text = fill(registry_text(raw), values(style, context, shown, rng), f"{style}.txt")
    return place(raw, text, extras(context)) + feedback_section(context.reviews)


def feedback_section(lines: tuple[str, ...]) -> str:
    """What people who reviewed earlier hypotheses said, after any template (empty when nothing)."""
    if not lines:
        return ""
    return ("\n\nFeedback from the people who reviewed earlier hypotheses of this kind; do not propose "
            "again what they rejected, nor something that fails for the same reason:\n"
            + "\n".join(f"- {line}" for line in lines) + "\n")
