"""The offline generator: hypotheses as expression trees over unary and binary primitives.

Bottom-up search in the spirit of Ramachandran et al. (2017), who found Swish this way: random trees,
plus mutation and crossover of the best previous symbolic hypotheses of the same kind (their trees
come back from MLflow as the `mlr.symbolic.genome` tag). A genome is JSON:

- activation:    {"f": tree over x}                      -> activation(x) = f(x)
- regularizer:   {"f": tree over w, "coef", "reduce"}    -> coef * sum(reduce(|f(w)|) for w in params)
- preprocessing: {"f": tree over z, "center", "scale"}   -> f((X - center) / scale), stats of X_train

A tree is ["x"], ["k", c, t] (c * t), ["u", op, t] or ["b", op, t1, t2]. Everything is drawn from
`random.Random(seed)`, so a round is reproducible from its seed and the parents it was shown.
"""
from __future__ import annotations

import json
import random
from typing import Iterator

from ..hypothesis import normalized_sha256 as normalized_hash
from ..tracking import names
from . import Context, Generator, Proposal

REPEAT_TRIES = 50  # draws per proposal before a repeat is proposed anyway (the round judges it)

TORCH_UNARY = {
    "neg": "(-{})", "abs": "torch.abs({})", "square": "torch.square({})",
    "sigmoid": "torch.sigmoid({})", "tanh": "torch.tanh({})", "softplus": "F.softplus({})",
    "relu": "torch.relu({})", "erf": "torch.erf({})", "sin": "torch.sin({})",
    "atan": "torch.atan({})", "gauss": "torch.exp(-torch.square({}))",
    "logabs": "torch.log1p(torch.abs({}))", "elu": "F.elu({})", "silu": "F.silu({})",
    "softsign": "F.softsign({})",
}
TORCH_BINARY = {
    "add": "({} + {})", "sub": "({} - {})", "mul": "({} * {})", "max": "torch.maximum({}, {})",
    "min": "torch.minimum({}, {})", "sdiv": "({} / (1 + torch.abs({})))",
}
NUMPY_UNARY = {
    "neg": "(-{})", "abs": "np.abs({})", "tanh": "np.tanh({})", "atan": "np.arctan({})",
    "slog": "(np.sign({0}) * np.log1p(np.abs({0})))", "clip": "np.clip({}, -3.0, 3.0)",
    "soft": "({0} / (1 + np.abs({0})))", "cbrt": "np.cbrt({})", "sin": "np.sin({})",
    "sigmoid": "(0.5 * (1 + np.tanh({} / 2)))", "square": "np.square({})",
}
NUMPY_BINARY = {
    "add": "({} + {})", "sub": "({} - {})", "mul": "({} * {})", "max": "np.maximum({}, {})",
    "min": "np.minimum({}, {})",
}
CONSTANTS = (0.1, 0.25, 0.5, 0.75, 1.5, 1.702, 2.0, 3.0)
NONNEGATIVE = {"abs", "square", "sigmoid", "softplus", "relu", "gauss", "logabs"}
CENTERS = {"mean": "np.mean(X_train, axis=0)", "median": "np.median(X_train, axis=0)",
           "min": "np.min(X_train, axis=0)", "none": "0.0"}
SCALES = {"std": "np.std(X_train, axis=0)",
          "iqr": "(np.percentile(X_train, 75, axis=0) - np.percentile(X_train, 25, axis=0))",
          "maxabs": "np.max(np.abs(X_train), axis=0)",
          "range": "(np.max(X_train, axis=0) - np.min(X_train, axis=0))", "none": "1.0"}
COEFS = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3)
MAX_DEPTH, MAX_NODES = 4, 12


def _ops(kind: str) -> tuple[dict, dict]:
    return (NUMPY_UNARY, NUMPY_BINARY) if kind == "preprocessing" else (TORCH_UNARY, TORCH_BINARY)


def render_tree(tree, var: str, kind: str) -> str:
    unary, binary = _ops(kind)
    tag = tree[0]
    if tag == "x":
        return var
    if tag == "k":
        return f"({tree[1]!r} * {render_tree(tree[2], var, kind)})"
    if tag == "u":
        return unary[tree[1]].format(render_tree(tree[2], var, kind))
    return binary[tree[1]].format(render_tree(tree[2], var, kind), render_tree(tree[3], var, kind))


def render(genome: dict, kind: str) -> str:
    """The hypothesis source for a genome."""
    if kind == "activation":
        return ("import torch\nimport torch.nn.functional as F\n\n\ndef activation(x):\n"
                f"    return {render_tree(genome['f'], 'x', kind)}\n")
    if kind == "regularizer":
        f = genome["f"]
        term = render_tree(f, "w", kind)
        if not (f[0] == "u" and f[1] in NONNEGATIVE):
            term = f"torch.abs({term})"
        return ("import torch\nimport torch.nn.functional as F\n\n\ndef regularizer(params):\n"
                f"    return {genome['coef']!r} * sum({term}.{genome['reduce']}() for w in params)\n")
    return ("import numpy as np\n\n\ndef _transform(z):\n"
            f"    return {render_tree(genome['f'], 'z', kind)}\n\n\n"
            "def preprocess(X_train, X_test):\n"
            f"    center = {CENTERS[genome['center']]}\n"
            f"    scale = {SCALES[genome['scale']]} + 1e-8\n"
            "    return _transform((X_train - center) / scale), _transform((X_test - center) / scale)\n")


def _size(tree) -> int:
    return 1 + sum(_size(t) for t in tree[2:] if isinstance(t, list)) if tree[0] != "x" else 1


def _depth(tree) -> int:
    children = [t for t in tree[2:] if isinstance(t, list)] if tree[0] != "x" else []
    return 1 + max((_depth(t) for t in children), default=0)


def random_tree(rng: random.Random, kind: str, depth: int, root: bool = False) -> list:
    """A random tree; a root is always an operation (a bare variable is the identity)."""
    unary, binary = _ops(kind)
    roll = 0.3 + 0.7 * rng.random() if root else rng.random()
    if depth <= 0 or roll < 0.2:
        return ["x"]
    if roll < 0.3:
        return ["k", rng.choice(CONSTANTS), random_tree(rng, kind, depth - 1)]
    if roll < 0.7:
        return ["u", rng.choice(sorted(unary)), random_tree(rng, kind, depth - 1)]
    return ["b", rng.choice(sorted(binary)), random_tree(rng, kind, depth - 1),
            random_tree(rng, kind, depth - 1)]


def random_genome(rng: random.Random, kind: str) -> dict:
    genome = {"f": random_tree(rng, kind, rng.randint(1, 3), root=True)}
    if kind == "regularizer":
        genome.update(coef=rng.choice(COEFS), reduce=rng.choice(("sum", "mean")))
    elif kind == "preprocessing":
        genome.update(center=rng.choice(sorted(CENTERS)), scale=rng.choice(sorted(SCALES)))
    return genome


def _paths(tree, path=()) -> list[tuple]:
    out = [path]
    if tree[0] != "x":
        for i, child in enumerate(tree[2:], start=2):
            if isinstance(child, list):
                out += _paths(child, path + (i,))
    return out


def _get(tree, path):
    for i in path:
        tree = tree[i]
    return tree


def _replace(tree, path, new):
    if not path:
        return new
    copy = list(tree)
    copy[path[0]] = _replace(tree[path[0]], path[1:], new)
    return copy


def mutate_tree(rng: random.Random, tree, kind: str) -> list:
    unary, binary = _ops(kind)
    path = rng.choice(_paths(tree))
    node = _get(tree, path)
    roll = rng.random()
    if node[0] == "u" and roll < 0.5:
        new = ["u", rng.choice(sorted(set(unary) - {node[1]})), node[2]]
    elif node[0] == "b" and roll < 0.5:
        new = ["b", rng.choice(sorted(set(binary) - {node[1]})), node[2], node[3]]
    elif node[0] == "k" and roll < 0.5:
        new = ["k", round(node[1] * rng.choice((0.5, 0.75, 1.25, 2.0)), 4), node[2]]
    elif roll < 0.75:
        new = random_tree(rng, kind, 2)
    else:  # wrap the node in a new operation
        new = ["u", rng.choice(sorted(unary)), node] if rng.random() < 0.5 else \
            ["b", rng.choice(sorted(binary)), node, random_tree(rng, kind, 1)]
    return _replace(tree, path, new)


def mutate(rng: random.Random, genome: dict, kind: str) -> dict:
    """A changed copy of `genome` (tries until something actually changed)."""
    for _ in range(10):
        child = _mutate_once(rng, genome, kind)
        if child != genome:
            return child
    return child


def _mutate_once(rng: random.Random, genome: dict, kind: str) -> dict:
    genome = dict(genome)
    roll = rng.random()
    if kind == "regularizer" and roll < 0.3:
        genome["coef" if roll < 0.2 else "reduce"] = (
            rng.choice(COEFS) if roll < 0.2 else rng.choice(("sum", "mean")))
    elif kind == "preprocessing" and roll < 0.3:
        key = "center" if roll < 0.15 else "scale"
        genome[key] = rng.choice(sorted(CENTERS if key == "center" else SCALES))
    else:
        genome["f"] = mutate_tree(rng, genome["f"], kind)
    return genome


def crossover(rng: random.Random, a: dict, b: dict) -> dict:
    """A's genome with one subtree replaced by a subtree of B's."""
    child = dict(a)
    donor = _get(b["f"], rng.choice(_paths(b["f"])))
    child["f"] = _replace(a["f"], rng.choice(_paths(a["f"])), donor)
    return child


ZERO = ["0"]  # only while simplifying: a subtree that is identically zero
ZERO_AT_ZERO = {"neg", "abs", "relu", "square", "sin", "tanh", "atan", "erf", "softsign", "silu",
                "elu", "logabs", "clip", "soft", "cbrt", "slog"}  # f(0) = 0


def simplify_tree(tree) -> list | None:
    """`tree` with trivial identities removed, bottom up: t - t = 0, 0 + t = t, 0 * t = 0,
    max(t, t) = t, -(-t) = t, c * (d * t) = (c*d) * t, abs/relu of something non-negative, abs(abs t).
    None when what is left is a constant (a zero under another operation, or the whole tree)."""
    out = _simplify(tree)
    if out is None or _has_zero(out):
        return None
    return out


def _has_zero(tree) -> bool:
    return tree == ZERO or (tree[0] != "x" and any(_has_zero(t) for t in tree[2:] if isinstance(t, list)))


def _simplify(tree):  # noqa: C901 - one rule a line reads best
    tag = tree[0]
    if tag == "x":
        return tree
    if tag == "k":
        inner = _simplify(tree[2])
        if inner is None or inner == ZERO:
            return inner
        if inner[0] == "k":
            return _simplify(["k", round(tree[1] * inner[1], 6), inner[2]])
        return inner if tree[1] == 1.0 else ["k", tree[1], inner]
    if tag == "u":
        op, inner = tree[1], _simplify(tree[2])
        if inner is None:
            return None
        if inner == ZERO:
            return ZERO if op in ZERO_AT_ZERO else None
        if op == "neg" and inner[0] == "u" and inner[1] == "neg":
            return inner[2]
        if op in ("abs", "relu") and inner[0] == "u" and inner[1] in NONNEGATIVE:
            return inner  # abs(relu t) = relu t, relu(square t) = square t, abs(abs t) = abs t
        if op == "clip" and inner[0] == "u" and inner[1] == "clip":
            return inner
        return ["u", op, inner]
    op, a, b = tree[1], _simplify(tree[2]), _simplify(tree[3])
    if a is None or b is None:
        return None
    if op == "sub" and a == b:
        return ZERO
    if op == "add" and a == b:
        return _simplify(["k", 2.0, a])
    if op in ("max", "min") and a == b:
        return a
    if op == "add" and ZERO in (a, b):
        return b if a == ZERO else a
    if op == "sub" and b == ZERO:
        return a
    if op == "sub" and a == ZERO:
        return _simplify(["u", "neg", b])
    if op == "mul" and ZERO in (a, b):
        return ZERO
    if op == "sdiv" and (a == ZERO or b == ZERO):
        return a
    if ZERO in (a, b):  # max(t, 0), min(0, t): a real function, but not one this grammar writes
        return None
    return ["b", op, a, b]


def simplified(genome: dict) -> dict | None:
    """The genome with its tree simplified; None when nothing but a constant is left (or the bare
    variable, which the grammar never proposes)."""
    tree = simplify_tree(genome["f"])
    if tree is None or tree == ["x"]:
        return None
    return {**genome, "f": tree}


def _fits(genome: dict) -> bool:
    return _size(genome["f"]) <= MAX_NODES and _depth(genome["f"]) <= MAX_DEPTH


class SymbolicGenerator(Generator):
    """Random trees at first; once symbolic parents exist, mostly their mutations and crossovers."""

    name = "symbolic"

    def __init__(self, max_proposals: int = 100_000):
        self.max_proposals = max_proposals

    def propose(self, context: Context) -> Iterator[Proposal]:
        rng = random.Random(context.seed)
        known = [k for k in context.known if k.genome]
        parents = [json.loads(k.genome) for k in known]
        made: set[str] = set()
        for _ in range(self.max_proposals):
            for _ in range(REPEAT_TRIES):  # skip what the experiment (or this round) has already
                genome, how, used = self._next(rng, parents, context.kind)
                source = render(genome, context.kind)
                sha = normalized_hash(source)
                if sha not in context.avoid and sha not in made:
                    break
            made.add(sha)
            tags = {names.SYMBOLIC_GENOME: json.dumps(genome, separators=(",", ":")),
                    names.SYMBOLIC_OPERATOR: how}
            if used:  # lineage: which known hypotheses this one was bred from
                tags[names.PARENTS] = ",".join(known[i].sha256 for i in used)
            yield Proposal(source, origin={"tags": tags})

    def _next(self, rng: random.Random, parents: list[dict], kind: str) -> tuple[dict, str, list]:
        for _ in range(20):
            roll = rng.random()
            if parents and roll < 0.5:
                # parents come best first: favour the top of the list
                i = min(int(rng.expovariate(0.5)), len(parents) - 1)
                genome, how, used = mutate(rng, parents[i], kind), "mutation", [i]
            elif len(parents) > 1 and roll < 0.75:
                a, b = rng.sample(range(len(parents)), 2)
                genome, how, used = crossover(rng, parents[a], parents[b]), "crossover", [a, b]
            else:
                genome, how, used = random_genome(rng, kind), "random", []
            genome = simplified(genome)
            if genome is not None and _fits(genome):
                return genome, how, used
        while True:
            genome = simplified(random_genome(rng, kind))
            if genome is not None:
                return genome, "random", []
