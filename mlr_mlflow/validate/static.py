"""Static checks on the AST: nothing is executed.

Each check returns reasons a person can act on. Everything is an allow-list: the names a hypothesis
may load (its own bindings, its imports, `SAFE_BUILTINS`), the attributes of each module
(`allowlist.MODULES`, resolved through import aliases) and the attributes of values
(`allowlist.VALUES`).
"""
from __future__ import annotations

import ast
import builtins

from ..hypothesis import SAFE_BUILTINS
from ..kinds import Kind
from . import allowlist

MAX_SOURCE_CHARS = 20_000

FORBIDDEN_NODES = {
    ast.ClassDef: "class definitions",
    ast.AsyncFunctionDef: "async functions",
    ast.Global: "global statements",
    ast.Nonlocal: "nonlocal statements",
    ast.With: "with statements",
    ast.AsyncWith: "async with statements",
    ast.Await: "await",
    ast.Yield: "generators (yield)",
    ast.YieldFrom: "generators (yield from)",
    ast.Delete: "del statements",
    # A class pattern's keywords are attribute lookups the allow-list never sees
    # (`case float(__class__=c)`), and its captures bind names: no match statements at all.
    ast.Match: "match statements",
    ast.TryStar: "except* clauses",
}
BUILTIN_NAMES = frozenset(dir(builtins))


def _is_constant_expr(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.Tuple):  # not lists: module-level state must not change between calls
        return all(_is_constant_expr(e) for e in node.elts)
    if isinstance(node, ast.UnaryOp):
        return _is_constant_expr(node.operand)
    if isinstance(node, ast.BinOp):
        return _is_constant_expr(node.left) and _is_constant_expr(node.right)
    return False


def _check_module_level(tree: ast.Module, kind: Kind) -> list[str]:
    reasons = []
    for i, node in enumerate(tree.body):
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef)):
            continue
        if i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # module docstring
        if (isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None
                and _is_constant_expr(node.value)
                and all(isinstance(t, ast.Name)
                        for t in (node.targets if isinstance(node, ast.Assign) else [node.target]))):
            continue
        reasons.append(f"line {node.lineno}: module level may hold only imports, constants and "
                       f"function definitions (found {type(node).__name__})")
    return reasons


def _check_imports(tree: ast.Module, kind: Kind) -> list[str]:
    allowed = ", ".join(sorted(kind.modules))
    reasons = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name not in kind.modules:
                    reasons.append(f"line {node.lineno}: import of {alias.name!r} is not allowed "
                                   f"for {kind.name} hypotheses (allowed: {allowed})")
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            for alias in node.names:
                if node.level or (module not in kind.modules
                                  and f"{module}.{alias.name}" not in kind.modules):
                    reasons.append(f"line {node.lineno}: 'from {'.' * node.level}{module} import "
                                   f"{alias.name}' is not allowed (allowed modules: {allowed})")
                elif (f"{module}.{alias.name}" not in kind.modules
                      and alias.name not in allowlist.MODULES.get(module, ())):
                    reasons.append(f"line {node.lineno}: {module}.{alias.name} is not in the "
                                   f"allow-list of pure math operations")
        else:
            continue
        if node not in tree.body:
            reasons.append(f"line {node.lineno}: imports belong at module level")
    return reasons


def _check_function(tree: ast.Module, kind: Kind) -> list[str]:
    public = [n for n in tree.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")]
    named = [n for n in public if n.name == kind.function]
    if not named:
        return [f"no function named {kind.function!r}: a {kind.name} hypothesis must define "
                f"{kind.function}({', '.join(['x'] if kind.arity == 1 else ['X_train', 'X_test'])})"]
    reasons = []
    if len(named) > 1:
        reasons.append(f"{kind.function!r} is defined {len(named)} times")
    others = [n.name for n in public if n.name != kind.function]
    if others:
        reasons.append(f"only one public function is allowed; also found {', '.join(others)} "
                       f"(prefix helpers with an underscore)")
    args = named[-1].args
    if args.vararg or args.kwarg or args.kwonlyargs or args.posonlyargs:
        reasons.append(f"{kind.function} must take plain positional parameters, no *args, **kwargs "
                       f"or keyword-only parameters")
    n = len(args.args)
    if n != kind.arity:
        reasons.append(f"{kind.function} takes {n} parameter(s); a {kind.name} takes {kind.arity}")
    return reasons


def _bound_names(tree: ast.Module) -> set[str]:
    bound = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.FunctionDef):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return bound


def _module_aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> module path, for every module the hypothesis imports."""
    aliases = {}
    for node in tree.body:
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    aliases[a.asname] = a.name
                else:
                    aliases[a.name.split(".")[0]] = a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                if f"{node.module}.{a.name}" in allowlist.MODULES:
                    aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    return aliases


def _module_path(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """The module an expression denotes (`F` -> torch.nn.functional), or None for a value."""
    if isinstance(node, ast.Name):
        return aliases.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _module_path(node.value, aliases)
        if base and f"{base}.{node.attr}" in allowlist.MODULES:
            return f"{base}.{node.attr}"
    return None


def _check_attribute(node: ast.Attribute, aliases: dict[str, str]) -> str | None:
    where = f"line {node.lineno}"
    if node.attr.startswith("_"):
        return f"{where}: private or dunder attribute {node.attr!r} is not allowed"
    if isinstance(node.ctx, (ast.Store, ast.Del)):
        return f"{where}: assigning to an attribute ({ast.unparse(node)}) is not allowed"
    module = _module_path(node.value, aliases)
    if module is not None:
        if node.attr not in allowlist.MODULES.get(module, ()):
            return (f"{where}: {module}.{node.attr} is not in the allow-list of pure math "
                    f"operations (no I/O, global state, randomness or code loading)")
    elif node.attr not in allowlist.VALUES:
        return (f"{where}: attribute {node.attr!r} is not in the allow-list of tensor/array "
                f"operations (in-place, aliasing and I/O methods are excluded)")
    return None


def _binding_names(node: ast.AST) -> list[str]:
    """The names `node` itself binds (parameters, targets, loop and handler names)."""
    if isinstance(node, ast.arg):
        return [node.arg]
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
        return [node.id]
    if isinstance(node, ast.ExceptHandler) and node.name:
        return [node.name]
    if isinstance(node, ast.FunctionDef):
        return [node.name]
    return []


def _check_bindings(tree: ast.Module, kind: Kind) -> list[str]:
    """Names mean one thing everywhere: no binding shadows a builtin or an imported name, so the
    checks below (which resolve `torch.x` or `getattr` by name, ignoring scope) cannot be fooled."""
    imported = set(_module_aliases(tree)) | {
        (a.asname or a.name).split(".")[0]
        for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom)) for a in node.names}
    reasons = []
    for node in ast.walk(tree):
        for name in _binding_names(node):
            if name in BUILTIN_NAMES:
                reasons.append(f"line {node.lineno}: the name {name!r} shadows a builtin; choose "
                               f"another name")
            elif name in imported:
                reasons.append(f"line {node.lineno}: the name {name!r} shadows an import; choose "
                               f"another name")
    return reasons


def _check_defaults(tree: ast.Module, kind: Kind) -> list[str]:
    """Defaults are evaluated once and shared by every call (and every seed of a cached function):
    a mutable one keeps state between the probes and training. Only constants are allowed."""
    reasons = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.Lambda)):
            for default in [*node.args.defaults, *node.args.kw_defaults]:
                if default is not None and not _is_constant_expr(default):
                    reasons.append(f"line {default.lineno}: default argument values must be "
                                   f"constants (numbers, strings or tuples of them), not "
                                   f"{ast.unparse(default)!r}: a default is shared between calls")
    return reasons


ANNOTATION_NODES = (ast.Name, ast.Attribute, ast.Constant, ast.Subscript, ast.Tuple, ast.BinOp,
                    ast.BitOr, ast.expr_context)


def _annotations(tree: ast.Module):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
                if a is not None and a.annotation is not None:
                    yield a.annotation
            if node.returns is not None:
                yield node.returns
        elif isinstance(node, ast.AnnAssign):
            yield node.annotation


def _check_definition_time(tree: ast.Module, kind: Kind) -> list[str]:
    """What runs once, when the module is loaded, and could bind a value that every later call
    shares (module-level state, like a mutable default): decorators (`@(lambda f: [])` turns the
    function's name into a list), annotations (`def f(x: (s := []))` binds `s` at module level),
    type parameters, and `:=` outside a function body. None of these are allowed; annotations
    may only name types (`float`, `list[int]`)."""
    reasons = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for dec in node.decorator_list:
                reasons.append(f"line {dec.lineno}: decorators are not allowed (a decorator runs once "
                               f"at load time and could replace {node.name!r} with shared state)")
            if getattr(node, "type_params", None):
                reasons.append(f"line {node.lineno}: type parameters are not allowed")
    for annotation in _annotations(tree):
        if not all(isinstance(n, ANNOTATION_NODES) for n in ast.walk(annotation)):
            reasons.append(f"line {annotation.lineno}: annotations may only name types, not "
                           f"{ast.unparse(annotation)!r} (an annotation is evaluated once, at load time)")
    in_bodies = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.Lambda))
                 for part in ([f.body] if isinstance(f, ast.Lambda) else f.body)
                 for n in ast.walk(part)}
    for node in ast.walk(tree):
        if isinstance(node, ast.NamedExpr) and id(node) not in in_bodies:
            reasons.append(f"line {node.lineno}: ':=' is allowed only inside a function body "
                           f"(here it would bind {ast.unparse(node.target)!r} once, for every call)")
    return reasons


def _check_handlers(tree: ast.Module, kind: Kind) -> list[str]:
    """The time limits interrupt hypothesis code with an exception that `except Exception` does not
    catch; a bare `except:` would, and a `finally` that returns or loops would discard it."""
    reasons = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ExceptHandler) and node.type is None:
            reasons.append(f"line {node.lineno}: a bare 'except:' is not allowed (name the "
                           f"exceptions, e.g. 'except (ValueError, ZeroDivisionError):')")
        elif isinstance(node, ast.Try) and node.finalbody:
            reasons.append(f"line {node.finalbody[0].lineno}: 'finally' clauses are not allowed")
    return reasons


def _check_names(tree: ast.Module, kind: Kind) -> list[str]:
    bound = _bound_names(tree)
    aliases = _module_aliases(tree)
    reasons = []
    for node in ast.walk(tree):
        for cls, what in FORBIDDEN_NODES.items():
            if isinstance(node, cls):
                reasons.append(f"line {node.lineno}: {what} are not allowed")
        if isinstance(node, ast.Name):
            if node.id.startswith("__"):
                reasons.append(f"line {node.lineno}: dunder name {node.id!r} is not allowed")
            elif isinstance(node.ctx, ast.Load) and node.id not in bound and node.id not in SAFE_BUILTINS:
                reasons.append(f"line {node.lineno}: name {node.id!r} is not allowed "
                               f"(not defined in the hypothesis and not a permitted builtin)")
            elif isinstance(node.ctx, ast.Store) and node.id in aliases:
                reasons.append(f"line {node.lineno}: rebinding the module name {node.id!r} is not allowed")
        elif isinstance(node, ast.Attribute):
            reason = _check_attribute(node, aliases)
            if reason:
                reasons.append(reason)
        elif isinstance(node, ast.Call):
            for kw in node.keywords:
                if kw.arg is None:
                    reasons.append(f"line {node.lineno}: '**' keyword unpacking in calls is not allowed")
                elif kw.arg == "out":
                    reasons.append(f"line {node.lineno}: 'out=' writes into an existing array and "
                                   f"is not allowed")
        elif isinstance(node, ast.AugAssign) and not kind.item_assignment:
            reasons.append(f"line {node.lineno}: augmented assignment ({ast.unparse(node).strip()}) "
                           f"is not allowed for {kind.name} hypotheses: it writes tensors in place; "
                           f"write 'a = a + b'")
        elif (isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store)
              and not kind.item_assignment):
            reasons.append(f"line {node.lineno}: item assignment ({ast.unparse(node)}) is not "
                           f"allowed for {kind.name} hypotheses: tensors are not modified in place")
    return reasons


def check_static(source: str, kind: Kind) -> list[str]:
    """All static reasons to reject `source` as a hypothesis of `kind` (empty when it passes)."""
    if not source.strip():
        return ["the file is empty"]
    if len(source) > MAX_SOURCE_CHARS:
        return [f"source is {len(source)} characters; the limit is {MAX_SOURCE_CHARS}"]
    try:
        tree = ast.parse(source)
        reasons = []
        for check in (_check_module_level, _check_imports, _check_function, _check_bindings,
                      _check_defaults, _check_definition_time, _check_handlers):
            reasons += check(tree, kind)
        reasons += _check_names(tree, kind)
    except SyntaxError as exc:
        return [f"syntax error at line {exc.lineno}: {exc.msg}"]
    except (RecursionError, MemoryError, ValueError) as exc:
        return [f"the source is too deeply nested to check ({type(exc).__name__})"]
    return list(dict.fromkeys(reasons))
