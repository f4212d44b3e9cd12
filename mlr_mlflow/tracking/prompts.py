"""MLflow's Prompt Registry, behind three calls: register a template once, load one by alias, and
register a new version. Alias lookups bypass MLflow's prompt cache (60 s by default), so a user who
moves an alias in the UI gets the new version in the very next round."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RegisteredPrompt:
    """One prompt version: its name, version, template text ({{var}} placeholders) and tags."""

    name: str
    version: str
    template: str
    tags: dict


def _client(tracking_uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def _registered(version) -> RegisteredPrompt:
    return RegisteredPrompt(version.name, str(version.version), version.template,
                            dict(version.tags or {}))


def ensure(tracking_uri: str, name: str, template: str, alias: str, tags: dict) -> None:
    """Register `template` as version 1 of `name` with `alias` on it, unless `name` exists."""
    client = _client(tracking_uri)
    if client.get_prompt(name) is not None:
        return
    version = client.register_prompt(name, template, commit_message="shipped with mlr-mlflow",
                                     tags=tags)
    client.set_prompt_alias(name, alias, int(version.version))


def register(tracking_uri: str, name: str, template: str, alias: str | None = None,
             tags: dict | None = None, message: str | None = None) -> RegisteredPrompt:
    """A new version of `name`; with `alias`, the alias moves to it."""
    client = _client(tracking_uri)
    version = client.register_prompt(name, template, commit_message=message, tags=tags)
    if alias:
        client.set_prompt_alias(name, alias, int(version.version))
    return _registered(version)


def load(tracking_uri: str, name: str, alias: str) -> RegisteredPrompt:
    """The version of `name` that `alias` names now (never from a cache)."""
    return _registered(_client(tracking_uri).load_prompt(f"prompts:/{name}@{alias}",
                                                         cache_ttl_seconds=0))
