"""A safe repair of an LLM's code before validation: two slips small models make all the time.

1. A missing import of a module the kind allows: `torch.` used but only `F` imported, `np.`
   without `import numpy as np`. Only the kind's own modules under their usual names are added.
2. The argument under another name: `def activation(x): return input * torch.sigmoid(input)`,
   where `input` is bound nowhere. With one undefined plain name in a function of the kind's arity
   whose parameter it must be, the name is renamed to the parameter.

Nothing else changes: no call, attribute or module outside the kind's allow-list is added, so a
repaired source is judged by the same validator as any other, and what it refused it refuses
(tests/test_repair.py). `repair(source, kind)` -> (source, notes); notes are empty when nothing
changed, and go on the hypothesis as the tag `mlr.llm.repaired`.
"""
from __future__ import annotations

import ast
import builtins

from ..kinds import get_kind
from ..validate.allowlist import VALUES

USUAL_NAMES = {  # alias used in code -> (import line, module the kind must allow)
    "torch": ("import torch", "torch"),
    "F": ("import torch.nn.functional as F", "torch.nn.functional"),
    "np": ("import numpy as np", "numpy"),
    "numpy": ("import numpy", "numpy"),
    "math": ("import math", "math"),
}

# builtins that code written for PyTorch uses as the tensor's name (torch's own parameter name)
ARGUMENT_LIKE = {"input"}


def repair(source: str, kind: str) -> tuple[str, list[str]]:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return source, []
    spec = get_kind(kind)
    notes: list[str] = []
    renamed = _rename_argument(tree, spec.function, spec.arity, set(USUAL_NAMES))
    if renamed:
        notes.append(f"renamed {renamed[0]} to the argument {renamed[1]}")
        source = ast.unparse(tree) + "\n"
        tree = ast.parse(source)
    missing = [alias for alias in _undefined(tree) if alias in USUAL_NAMES
               and USUAL_NAMES[alias][1] in spec.modules]
    if missing:
        lines = [USUAL_NAMES[a][0] for a in sorted(missing)]
        notes.append("added " + "; ".join(lines))
        source = "\n".join(lines) + "\n" + source
    return source, notes


def _bound_at_module(tree: ast.Module) -> set[str]:
    bound = set()
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target]):
                bound |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    return bound


def _bound_in(function: ast.AST) -> set[str]:
    """Names a function binds: parameters, assignments, loop and comprehension targets, lambdas."""
    bound = set()
    for node in ast.walk(function):
        if isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node is not function:
            bound.add(node.name)
    return bound


def _undefined(tree: ast.Module) -> set[str]:
    """Plain names read somewhere but bound nowhere (neither module level, in their function, nor a
    builtin)."""
    known = _bound_at_module(tree) | set(dir(builtins))
    found = set()
    for function in [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]:
        local = _bound_in(function)
        found |= {n.id for n in ast.walk(function) if isinstance(n, ast.Name)
                  and isinstance(n.ctx, ast.Load) and n.id not in known | local}
    found |= {n.id for node in tree.body if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
              for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
              and n.id not in known}
    return found


def _rename_argument(tree: ast.Module, name: str, arity: int, modules: set[str]):
    """In the kind's function of one parameter, the single undefined plain name that is not a
    module alias becomes the parameter; (old, new) or None."""
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name]
    if len(functions) != 1 or arity != 1:
        return None
    fn = functions[0]
    params = fn.args.posonlyargs + fn.args.args
    if len(params) != 1 or fn.args.vararg or fn.args.kwarg or fn.args.kwonlyargs:
        return None
    known = _bound_at_module(tree) | (set(dir(builtins)) - ARGUMENT_LIKE) | _bound_in(fn)
    loose = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
             and n.id not in known and n.id not in modules}
    if len(loose) != 1:
        return None
    old, new = loose.pop(), params[0].arg
    if any(isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == old
           and n.attr not in VALUES for n in ast.walk(fn)):
        return None  # used like a module (`os.system`), not like a tensor: not the argument
    for node in ast.walk(fn):
        if isinstance(node, ast.Name) and node.id == old:
            node.id = new
    return old, new
