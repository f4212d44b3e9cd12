"""Ideas from papers: passages of the files in `--context DIR`, retrieved for a kind's prompt.

The files are untrusted input. Only regular files directly or indirectly inside DIR are read
(symbolic links are skipped, and so is anything whose real path leaves DIR); `.txt`, `.md` and
`.pdf` only, each at most MAX_FILE_BYTES, at most MAX_FILES files, MAX_PDF_PAGES pages and
MAX_CHARS characters of text per file. A file that cannot be read or parsed is skipped with a
warning, never an error of the round. PDF text comes from `pypdf`.

Text is cut into passages of about PASSAGE_CHARS characters along paragraph breaks; each passage
is embedded with the package's local encoder (all-MiniLM-L6-v2, reward/features/embed.py), and the SHOWN
closest to a query built from the kind's contract go into the prompt (none below MIN_SIMILARITY:
a folder about something else inspires nothing). A passage's id is
"<path relative to DIR>#<n>" (its n-th passage).
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

from ..config import UsageError
from . import Passage

log = logging.getLogger(__name__)
SUFFIXES = (".txt", ".md", ".pdf")
MAX_FILES = 100
MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_PDF_PAGES = 200
MAX_CHARS = 400_000
MAX_PASSAGES = 3000  # embedded per round, over all files
PASSAGE_CHARS = 800
SHOWN = 4
MIN_SIMILARITY = 0.1  # cosine to the query; below it a passage is about something else

QUERIES = {
    "activation": "a new activation function for neural networks: a nonlinearity, its shape, "
                  "gradient, smoothness, saturation and the negative side, and how it affects training",
    "preprocessing": "a new preprocessing of tabular features before training: normalization, "
                     "scaling, robust statistics, outliers, nonlinear transforms of features",
    "regularizer": "a new regularizer of neural network weights: a penalty added to the training "
                   "loss, weight decay, sparsity, norms, generalization and overfitting",
}


def context_files(directory: str | Path) -> list[Path]:
    """The readable paper files under `directory`, sorted, within the limits above."""
    root = Path(directory)
    if not root.is_dir():
        raise UsageError(f"--context {directory}: not a directory")
    root = root.resolve()
    files = []
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() not in SUFFIXES or path.is_symlink() or not path.is_file():
            continue
        real = path.resolve()
        if not real.is_relative_to(root):  # reached through a linked directory that leaves DIR
            continue
        if real.stat().st_size > MAX_FILE_BYTES:
            log.warning("--context: %s skipped: larger than %d bytes", path, MAX_FILE_BYTES)
            continue
        files.append(path)
        if len(files) >= MAX_FILES:
            log.warning("--context: only the first %d files are read", MAX_FILES)
            break
    return files


def read_text(path: Path) -> str:
    """The text of one file (at most MAX_CHARS characters); empty when it cannot be read."""
    try:
        if path.suffix.lower() == ".pdf":
            return _pdf_text(path)[:MAX_CHARS]
        return path.read_bytes()[:MAX_CHARS * 4].decode("utf-8", errors="replace")[:MAX_CHARS]
    except Exception as exc:  # noqa: BLE001 - an untrusted file that breaks the parser is skipped
        log.warning("--context: %s skipped: %s: %s", path, type(exc).__name__, str(exc)[:200])
        return ""


def _pdf_text(path: Path) -> str:
    from pypdf import PdfReader

    reader = PdfReader(str(path), strict=False)
    parts, total = [], 0
    for page in reader.pages[:MAX_PDF_PAGES]:
        text = page.extract_text() or ""
        parts.append(text)
        total += len(text)
        if total >= MAX_CHARS:
            break
    return "\n\n".join(parts)


def chunk(text: str, size: int = PASSAGE_CHARS) -> list[str]:
    """Passages of about `size` characters, cut at paragraph breaks (long paragraphs at spaces)."""
    pieces: list[str] = []
    for para in re.split(r"\n\s*\n", text):
        para = " ".join(para.split())
        while len(para) > size:
            cut = para.rfind(" ", size // 2, size)
            cut = cut if cut > 0 else size
            pieces.append(para[:cut])
            para = para[cut:].strip()
        if para:
            pieces.append(para)
    out, current = [], ""
    for piece in pieces:
        if current and len(current) + 1 + len(piece) > size:
            out.append(current)
            current = piece
        else:
            current = f"{current} {piece}".strip()
    if current:
        out.append(current)
    return [p for p in out if len(p) >= 20]  # page numbers and stray headers say nothing


def passages_of(directory: str | Path) -> list[Passage]:
    """Every passage of every paper file under `directory`, in file order."""
    root = Path(directory).resolve()
    out: list[Passage] = []
    for path in context_files(directory):
        rel = path.resolve().relative_to(root).as_posix()
        for n, text in enumerate(chunk(read_text(path))):
            out.append(Passage(f"{rel}#{n}", rel, text))
            if len(out) >= MAX_PASSAGES:
                log.warning("--context: only the first %d passages are searched", MAX_PASSAGES)
                return out
    return out


def retrieve(directory: str | Path, kind: str, shown: int = SHOWN, encoder=None) -> list[Passage]:
    """At most `shown` passages closest to the kind's query, closest first (ties: file order)."""
    from ..reward.features.embed import Encoder

    candidates = passages_of(directory)
    if not candidates:
        return []
    encoder = encoder or Encoder()
    vectors = encoder.embed([p.text for p in candidates])
    query = encoder.embed([QUERIES[kind]])[0]
    scores = vectors @ query
    order = sorted((i for i in range(len(candidates)) if scores[i] >= MIN_SIMILARITY),
                   key=lambda i: (-round(float(scores[i]), 6), i))[:shown]
    return [Passage(candidates[i].id, candidates[i].file, candidates[i].text,
                    round(float(scores[i]), 4)) for i in order]


def inspiration(passages) -> dict:
    """What a proposal inspired by `passages` records: {"tags", "artifacts"} (empty without any)."""
    import json

    from ..tracking import names

    if not passages:
        return {}
    return {"tags": {names.INSPIRED_BY: ",".join(p.id for p in passages)[:5000]},
            "artifacts": {names.PASSAGES_ARTIFACT: json.dumps(
                [{"id": p.id, "file": p.file, "text": p.text, "score": p.score} for p in passages],
                indent=1)}}
