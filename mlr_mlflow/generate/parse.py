"""Code out of LLM replies, robustly: fences or none, prose around, truncation, several functions.

`extract(reply, kind)` returns candidate sources (possibly several: a reply that defines the kind's
function three times gives three candidates), each reduced to what a hypothesis file may hold:
imports, constants and function definitions. It never executes anything; the validator judges
what comes out. An empty list means no usable code.
"""
from __future__ import annotations

import ast
import re

from ..kinds import get_kind

FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
CODE_START = re.compile(r"^(import |from |def |@)", re.MULTILINE)
MAX_REPLY_CHARS = 40_000


def _blocks(reply: str) -> list[str]:
    """Fenced blocks (a block cut off by the token limit counts), else the text from the first
    line that looks like code, else nothing."""
    fenced = [body for lang, body in FENCE.findall(reply)
              if lang.lower() in ("", "python", "py", "python3")]
    if fenced:
        return fenced
    start = CODE_START.search(reply)
    return [reply[start.start():]] if start else []


def _parse_prefix(code: str) -> ast.Module | None:
    """The longest prefix of lines that parses (drops prose or a truncated line at the end)."""
    lines = code.strip("\n").splitlines()
    for end in range(len(lines), 0, -1):
        try:
            return ast.parse("\n".join(lines[:end]))
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
    return None


def _is_constant(node: ast.AST) -> bool:
    return isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets) \
        and all(isinstance(n, (ast.Constant, ast.Tuple, ast.UnaryOp, ast.BinOp, ast.operator,
                               ast.unaryop, ast.Load, ast.Store, ast.Name))
                for n in ast.walk(node.value))


class _Rename(ast.NodeTransformer):
    def __init__(self, mapping: dict[str, str]):
        self.mapping = mapping

    def visit_Name(self, node: ast.Name) -> ast.Name:
        node.id = self.mapping.get(node.id, node.id)
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        node.name = self.mapping.get(node.name, node.name)
        self.generic_visit(node)
        return node


def _candidates(module: ast.Module, function: str, arity: int) -> list[str]:
    imports = [n for n in module.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    constants = [n for n in module.body if _is_constant(n)]
    defs = [n for n in module.body if isinstance(n, ast.FunctionDef)]
    mains = [d for d in defs if d.name == function]
    if not mains:  # one public function of the right arity under another name: take it
        from ..kinds import KINDS

        others = {k.function for k in KINDS.values()}  # another kind's function is not a match
        public = [d for d in defs if not d.name.startswith("_") and len(d.args.args) == arity
                  and d.name not in others]
        if len(public) != 1:
            return []
        mains = public
    helpers = [d for d in defs if d not in mains]
    # helpers get private names (one public function per file); the main gets the kind's name
    mapping = {h.name: f"_{h.name}" for h in helpers if not h.name.startswith("_")}
    out = []
    for main in mains:
        body = [*imports, *constants, *helpers, main]
        tree = ast.Module(body=[ast.parse(ast.unparse(n)).body[0] for n in body], type_ignores=[])
        tree = _Rename({**mapping, main.name: function}).visit(tree)
        for node in tree.body:  # decorators could run code at import: never kept
            if isinstance(node, ast.FunctionDef):
                node.decorator_list = []
        out.append(ast.unparse(ast.fix_missing_locations(tree)) + "\n")
    return out


def extract(reply: str | None, kind: str) -> list[str]:
    """Candidate hypothesis sources found in `reply` (deduplicated, in order)."""
    k = get_kind(kind)
    if not reply or not reply.strip():
        return []
    found: list[str] = []
    for block in _blocks(reply[:MAX_REPLY_CHARS]):
        module = _parse_prefix(block)
        if module is None:
            continue
        for source in _candidates(module, k.function, k.arity):
            if source not in found:
                found.append(source)
    return found
