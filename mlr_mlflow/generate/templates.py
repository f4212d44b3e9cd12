"""Where a round's prompt templates come from, and which version each one is.

- The shipped templates (prompts/incremental.txt, novelty.txt) live in MLflow's Prompt Registry as
  `mlr-<kind>-<style>`: registered on first use, alias `production`. A round loads the version the
  alias names when it starts, so a user who edits the prompt in the MLflow UI and moves the alias
  gets the new version in the next round.
- `[llm] prompt = "NAME@ALIAS"` uses a prompt the user registered; its version tag
  `mlr.prompt.style` says which examples fill {{examples}} (incremental, unless it says novelty).
- `[llm] prompt_dir` reads template files instead of the registry (versioned by content hash).
Without a tracking store (a generator used on its own) the shipped files are used, version "builtin".
"""
from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path

from ..config import LLMConfig
from ..tracking import names
from ..tracking import prompts as registry
from .prompts import BUILTIN_DIR, STYLES, PromptError, registry_text


@dataclass(frozen=True)
class PromptTemplate:
    """One template as a round uses it: `text` has {{placeholder}}s; `style` picks the examples."""

    name: str
    version: str
    style: str
    text: str


def _file(kind: str, style: str, directory: str) -> PromptTemplate:
    path = Path(directory or BUILTIN_DIR) / f"{style}.txt"
    if not path.is_file():
        raise PromptError(f"prompt template not found: {path}")
    text = registry_text(path.read_text())
    version = hashlib.sha256(text.encode()).hexdigest()[:12] if directory else "builtin"
    return PromptTemplate(str(path) if directory else names.prompt_name(kind, style), version,
                          style, text)


def _style_of(loaded: registry.RegisteredPrompt, default: str) -> str:
    style = loaded.tags.get(names.PROMPT_STYLE_TAG, default)
    return style if style in STYLES else default


def shipped(kind: str, style: str, tracking_uri: str) -> PromptTemplate:
    """The shipped template of `kind` and `style` at its `production` version (registered first
    when the store has never seen it)."""
    name = names.prompt_name(kind, style)
    builtin = _file(kind, style, "")
    registry.ensure(tracking_uri, name, builtin.text, names.PROMPT_ALIAS,
                    {names.PROMPT_STYLE_TAG: style, names.KIND: kind})
    loaded = registry.load(tracking_uri, name, names.PROMPT_ALIAS)
    return PromptTemplate(name, loaded.version, _style_of(loaded, style), loaded.template)


def named(reference: str, tracking_uri: str | None) -> PromptTemplate:
    """A registered prompt `NAME@ALIAS`."""
    name, _, alias = reference.partition("@")
    if not tracking_uri:
        raise PromptError(f"[llm] prompt = {reference!r} names a registered prompt, but no "
                          "tracking store is at hand")
    try:
        loaded = registry.load(tracking_uri, name, alias)
    except Exception as exc:  # MlflowException: no such prompt or alias
        raise PromptError(f"[llm] prompt = {reference!r}: not in the Prompt Registry of "
                          f"{tracking_uri} ({exc})") from None
    return PromptTemplate(name, loaded.version, _style_of(loaded, "incremental"), loaded.template)


def round_templates(config: LLMConfig, kind: str, tracking_uri: str | None) -> list[PromptTemplate]:
    """The templates a round alternates between, in order (one, or incremental then novelty)."""
    if config.prompt not in (*STYLES, "mixed"):
        return [named(config.prompt, tracking_uri)]
    styles = list(STYLES) if config.prompt == "mixed" else [config.prompt]
    if config.prompt_dir or not tracking_uri:
        return [_file(kind, style, config.prompt_dir) for style in styles]
    try:
        return [shipped(kind, style, tracking_uri) for style in styles]
    except Exception as exc:  # a store without a Prompt Registry (a file store, an old server)
        warnings.warn(f"the Prompt Registry of {tracking_uri} is not usable ({exc}); using the "
                      "shipped prompt files (version 'builtin')", stacklevel=2)
        return [_file(kind, style, "") for style in styles]
