"""Cheap structural features of hypothesis code, read from the AST (nothing is executed).

Counts of node types, depth, size, which primitives are called, and the constants used. They are
the same for every process and need no model download; `embed` adds text embeddings, and
`grid` adds behaviour on a probe grid (computed in the sandbox).
"""
from __future__ import annotations

import ast
import math

import numpy as np

PRIMITIVES = (
    "sigmoid", "tanh", "softplus", "relu", "erf", "exp", "log", "log1p", "abs", "square", "sqrt",
    "sin", "cos", "atan", "arctan", "maximum", "minimum", "where", "clamp", "clip", "gelu", "silu",
    "elu", "mish", "softsign", "sign", "pow", "mean", "std", "median", "percentile", "sum", "norm",
    "max", "min", "cbrt", "quantile", "selu", "leaky_relu", "hardswish", "hardtanh",
)
NODES = (ast.Call, ast.BinOp, ast.UnaryOp, ast.Compare, ast.IfExp, ast.Name, ast.Constant,
         ast.Attribute, ast.Subscript, ast.FunctionDef, ast.For, ast.comprehension, ast.Return)
OPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.USub)
NAMES = (*(f"calls.{p}" for p in PRIMITIVES), *(f"nodes.{n.__name__}" for n in NODES),
         *(f"ops.{o.__name__}" for o in OPS),
         "size.nodes", "size.depth", "size.lines", "const.count", "const.mean_log_abs", "const.max_abs",
         "parse_failed")


def _depth(node: ast.AST) -> int:
    children = list(ast.iter_child_nodes(node))
    return 1 + max((_depth(c) for c in children), default=0)


def _called(node: ast.Call) -> str | None:
    f = node.func
    if isinstance(f, ast.Attribute):
        return f.attr
    if isinstance(f, ast.Name):
        return f.id
    return None


def structural(source: str) -> np.ndarray:
    """One float vector per source, in the order of NAMES."""
    values = dict.fromkeys(NAMES, 0.0)
    try:
        tree = ast.parse(source)
        depth = _depth(tree)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        values["parse_failed"] = 1.0
        return np.array([values[n] for n in NAMES], dtype=np.float32)
    constants = []
    for node in ast.walk(tree):
        values["size.nodes"] += 1
        for cls in NODES:
            if isinstance(node, cls):
                values[f"nodes.{cls.__name__}"] += 1
        if isinstance(node, ast.BinOp) or isinstance(node, ast.UnaryOp):
            op = type(node.op)
            if op in OPS:
                values[f"ops.{op.__name__}"] += 1
        if isinstance(node, ast.Call):
            name = _called(node)
            if name in PRIMITIVES:
                values[f"calls.{name}"] += 1
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) \
                and not isinstance(node.value, bool):
            constants.append(float(node.value))
    values["size.depth"] = float(depth)
    values["size.lines"] = float(len([ln for ln in source.splitlines() if ln.strip()]))
    if constants:
        finite = [abs(c) for c in constants if math.isfinite(c)]
        values["const.count"] = float(len(constants))
        values["const.mean_log_abs"] = float(np.mean([math.log10(c + 1e-12) for c in finite])) if finite else 0.0
        values["const.max_abs"] = float(min(max(finite, default=0.0), 1e6))
    return np.array([values[n] for n in NAMES], dtype=np.float32)


def structural_matrix(sources: list[str]) -> np.ndarray:
    return np.stack([structural(s) for s in sources]) if sources else np.zeros((0, len(NAMES)), np.float32)
