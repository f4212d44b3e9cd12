"""A hypothesis: the source of one component, its kind, and its normalised hash.

`load_function` turns a source into a callable with restricted builtins and imports. It is meant to be
called only inside a sandboxed process (see `mlr_mlflow.sandbox`); the static checks of
`mlr_mlflow.validate.static` run before it and do not execute anything.
"""
from __future__ import annotations

import ast
import builtins
import copy
import hashlib
import importlib
import os
import stat
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from .kinds import Kind, get_kind
from .config import UsageError

# Builtins a hypothesis may call: pure functions on numbers and containers. Everything that can
# reach the interpreter, the file system or attribute lookup by name (open, getattr, type, eval...)
# is absent, so such a call fails with NameError even if the static checks were bypassed.
SAFE_BUILTINS = frozenset({
    "abs", "all", "any", "bool", "dict", "divmod", "enumerate", "filter", "float", "int",
    "isinstance", "len", "list", "map", "max", "min", "pow", "range", "reversed", "round",
    "sorted", "sum", "tuple", "zip", "slice", "True", "False", "None",
    "ArithmeticError", "ValueError", "ZeroDivisionError", "RuntimeError",
})


class HypothesisError(UsageError):
    """A hypothesis file that cannot even be read (a usage error, not an invalid hypothesis)."""


# a hypothesis is one short function; anything larger is a mistake or an attempt to fill the store
MAX_SOURCE_BYTES = 256 * 1024


def read_source(path: str | Path) -> str:
    """The text of a user-named hypothesis file, read only when it is a regular file that really
    lies in the directory it is named in: a symbolic link that leads out of that directory, a
    FIFO, a device or a file over MAX_SOURCE_BYTES is a HypothesisError (this process is not
    sandboxed, and the text becomes a run's artifact)."""
    path = Path(path)
    folder = os.path.realpath(path.parent)
    real = os.path.realpath(path)
    if not os.path.lexists(path):
        raise HypothesisError(f"hypothesis file not found: {path}")
    if not _inside(real, folder):
        raise HypothesisError(f"hypothesis file {path} is a symbolic link out of {folder} (to {real}); "
                              "name the file itself")
    try:  # O_NOFOLLOW: the last step cannot become a link; O_NONBLOCK: a FIFO cannot hang the open
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise HypothesisError(f"hypothesis file not found: {path}") from None
    except OSError as exc:
        raise HypothesisError(f"cannot read hypothesis file {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            what = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file (a FIFO, socket or device)"
            raise HypothesisError(f"hypothesis file {path} is {what}")
        opened = _opened_path(fd, real)
        if not _inside(opened, folder):  # a folder on the way was swapped for a link meanwhile
            raise HypothesisError(f"hypothesis file {path} lies outside {folder} (at {opened})")
        data = b"" if info.st_size > MAX_SOURCE_BYTES else _read_at_most(fd, MAX_SOURCE_BYTES + 1)
        if info.st_size > MAX_SOURCE_BYTES or len(data) > MAX_SOURCE_BYTES:
            raise HypothesisError(f"hypothesis file {path} is larger than {MAX_SOURCE_BYTES // 1024} KiB")
    finally:
        os.close(fd)
    try:  # newlines as read_text reads them
        return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError as exc:
        raise HypothesisError(f"cannot read hypothesis file {path}: not UTF-8 text ({exc.reason} "
                              f"at byte {exc.start})") from None


def _inside(path: str, folder: str) -> bool:
    return os.path.commonpath([path, folder]) == folder


def _opened_path(fd: int, fallback: str) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:  # no /proc: the path it was opened by
        return fallback


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks, size = [], 0
    while size < limit:
        chunk = os.read(fd, min(65536, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


@dataclass(frozen=True)
class Hypothesis:
    """One component's source and kind.

    Attributes:
        kind: a kind name of CONTRACT.md.
        source: the Python source as written.
        generator: who proposed it ("user" for a file given on the command line).
        origin: what the generator wants kept with its run, not part of the identity:
            {"tags": {...}, "metrics": {...}, "artifacts": {path: text}}.
    """

    kind: str
    source: str
    generator: str = "user"
    origin: dict = field(default_factory=dict, compare=False, hash=False, repr=False)

    @classmethod
    def from_file(cls, path: str | Path, kind: str, generator: str = "user") -> "Hypothesis":
        get_kind(kind)
        return cls(kind=kind, source=read_source(path), generator=generator)

    @property
    def sha256(self) -> str:
        return normalized_sha256(self.source)

    def annotated(self, tags: dict | None = None, metrics: dict | None = None) -> "Hypothesis":
        """The same hypothesis with `tags` and `metrics` added to what its runs record (its
        `origin`); this one and its origin are left as they are."""
        origin = dict(self.origin)
        if tags:
            origin["tags"] = {**(origin.get("tags") or {}), **tags}
        if metrics:
            origin["metrics"] = {**(origin.get("metrics") or {}), **metrics}
        return replace(self, origin=origin)

    @property
    def expression(self) -> str:
        """What it computes, in one readable line (see `expression`)."""
        return expression(self.source, get_kind(self.kind).function)


EXPRESSION_CHARS = 80


def expression(source: str, function: str | None = None, limit: int = EXPRESSION_CHARS) -> str:
    """One readable line for a hypothesis beside its hash, e.g. `torch.tanh(x / (1 + torch.abs(x)))`:
    the return expression of `function` (else the last function defined) with the simple assignments
    before it substituted in; where the body does more (branches, loops, several returns), its
    first meaningful line. At most `limit` characters (cut with "…"); never raises."""
    try:
        line = _return_expression(ast.parse(source), function)
    except (SyntaxError, RecursionError, MemoryError, ValueError):
        line = None
    if line is None:
        line = next((text.strip() for text in source.splitlines()
                     if text.strip() and not text.strip().startswith(("#", "import ", "from ", "def ", '"""', "'''", "@"))),
                    source.strip().splitlines()[0] if source.strip() else "")
    line = " ".join(line.split())
    return line if len(line) <= limit else line[:limit - 1] + "…"


class _Substitute(ast.NodeTransformer):
    def __init__(self, values: dict[str, ast.expr]):
        self.values = values

    def visit_Name(self, node: ast.Name) -> ast.expr:
        if isinstance(node.ctx, ast.Load) and node.id in self.values:
            return copy.deepcopy(self.values[node.id])  # a copy per use: unparse marks nodes
        return node


def _return_expression(tree: ast.Module, function: str | None) -> str | None:
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    chosen = [d for d in defs if d.name == function] or defs[-1:]
    if not chosen:
        return None
    body = chosen[0].body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    values: dict[str, ast.expr] = {}
    for stmt in body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            values[stmt.targets[0].id] = _Substitute(values).visit(stmt.value)
        elif isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name):
            current = ast.Name(stmt.target.id, ast.Load())
            values[stmt.target.id] = _Substitute(values).visit(ast.BinOp(current, stmt.op, stmt.value))
        elif isinstance(stmt, ast.Return) and stmt.value is not None and stmt is body[-1]:
            return ast.unparse(_Substitute(values).visit(stmt.value))
        else:
            return None
    return None


class _Canonical(ast.NodeTransformer):
    """Renames arguments and local variables to v0, v1, ... in order of first appearance."""

    def __init__(self, keep: set[str]):
        self.keep = keep
        self.names: dict[str, str] = {}

    def _rename(self, name: str) -> str:
        if name in self.keep:
            return name
        return self.names.setdefault(name, f"v{len(self.names)}")

    def visit_Name(self, node: ast.Name) -> ast.Name:
        node.id = self._rename(node.id)
        return node

    def visit_arg(self, node: ast.arg) -> ast.arg:
        node.arg = self._rename(node.arg)
        node.annotation = None
        return node


def _strip_docstrings(tree: ast.AST) -> None:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]


def normalized_sha256(source: str) -> str:
    """Hash that ignores comments, docstrings, formatting and the names of arguments and locals.

    Module-level names (imports, constants, functions) and builtins keep their names, since they
    carry meaning. A source that does not parse (or nests too deeply to walk) is hashed as text.
    """
    try:
        return _ast_sha256(source)
    except (SyntaxError, RecursionError, MemoryError, ValueError):
        return hashlib.sha256(source.encode()).hexdigest()


def _ast_sha256(source: str) -> str:
    tree = ast.parse(source)
    keep = set(dir(builtins))
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            keep.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            keep.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Assign):
            keep.update(t.id for t in node.targets if isinstance(t, ast.Name))
    _strip_docstrings(tree)
    tree = _Canonical(keep).visit(tree)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            node.returns = None
    return hashlib.sha256(ast.dump(tree, annotate_fields=False).encode()).hexdigest()


def _restricted_import(kind: Kind):
    roots = {m.split(".")[0] for m in kind.modules}

    def _import(name, globals=None, locals=None, fromlist=(), level=0):
        # The kind's own modules only. Library code that C calls back into Python from the
        # hypothesis's frame (PyImport_Import) resolves `__import__` through these builtins too;
        # it reads the module from sys.modules itself, so it is let through only for private
        # implementation modules already loaded under the kind's roots and with an empty
        # fromlist, which returns nothing but the (allowed) top-level package.
        private = any(part.startswith("_") for part in name.split(".")[1:])
        allowed = (name in kind.modules
                   or any(f"{name}.{item}" in kind.modules for item in fromlist or ())
                   or (not fromlist and private and name.split(".")[0] in roots
                       and name in sys.modules))
        if level != 0 or not allowed:
            raise ImportError(f"import of {name!r} is not allowed for {kind.name} hypotheses")
        return importlib.__import__(name, globals, locals, fromlist, level)
    return _import


def load_function(source: str, kind_name: str):
    """Execute a hypothesis source in a fresh namespace and return its public function."""
    kind = get_kind(kind_name)
    safe = {name: getattr(builtins, name) for name in SAFE_BUILTINS}
    safe["__import__"] = _restricted_import(kind)
    namespace = {"__builtins__": safe, "__name__": "hypothesis"}
    exec(compile(source, "hypothesis.py", "exec"), namespace)
    fn = namespace.get(kind.function)
    if not callable(fn):
        raise ValueError(f"hypothesis defines no function {kind.function!r}")
    return fn
