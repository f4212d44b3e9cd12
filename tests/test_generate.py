"""Generators: the symbolic one (valid, diverse, deduplicated, deterministic) and prompt rendering."""
import itertools
import json

import pytest

from mlr_mlflow.generate import Context, Known
from mlr_mlflow.generate.prompts import PromptError, render
from mlr_mlflow.generate.symbolic import SymbolicGenerator, crossover, mutate, random_genome
from mlr_mlflow.generate.symbolic import render as render_genome
from mlr_mlflow.hypothesis import Hypothesis
from mlr_mlflow.kinds import get_kind
from mlr_mlflow.validate import check_static, validate_many

KINDS = ("activation", "preprocessing", "regularizer")


def take(kind, seed=0, n=40, known=()):
    return list(itertools.islice(SymbolicGenerator().propose(Context(kind, tuple(known), seed)), n))


@pytest.mark.parametrize("kind", KINDS)
def test_symbolic_is_valid_diverse_and_deterministic(kind, sandbox):
    proposals = take(kind)
    hypotheses = [Hypothesis(kind, p.source, "symbolic") for p in proposals]
    assert all(check_static(h.source, get_kind(kind)) == [] for h in hypotheses)
    results = validate_many(hypotheses, sandbox)
    assert sum(r.valid for r in results) >= 0.8 * len(results), [r.reasons for r in results]
    assert len({h.sha256 for h in hypotheses}) >= 0.6 * len(hypotheses)  # diverse
    assert [p.source for p in take(kind)] == [p.source for p in proposals]  # same seed, same code
    assert [p.source for p in take(kind, seed=1)] != [p.source for p in proposals]
    genome = json.loads(proposals[0].origin["tags"]["mlr.symbolic.genome"])
    assert render_genome(genome, kind) == proposals[0].source  # the tag reproduces the code


def test_symbolic_breeds_from_parents():
    import random

    rng = random.Random(0)
    a, b = random_genome(rng, "activation"), random_genome(rng, "activation")
    parents = [Known(render_genome(g, "activation"), 0.9, f"s{i}", json.dumps(g))
               for i, g in enumerate((a, b))]
    proposals = take("activation", known=parents, n=60)
    operators = {p.origin["tags"]["mlr.symbolic.operator"] for p in proposals}
    assert operators == {"mutation", "crossover", "random"}
    assert mutate(random.Random(1), a, "activation") != a
    child = crossover(random.Random(2), a, b)
    assert child["f"] != a["f"] or child["f"] != b["f"]


def test_prompts_render_both_styles():
    known = (Known("def activation(x):\n    return x * 2\n", 0.75, "abc"),)
    inc = render("incremental", Context("activation", known))
    assert "B-WR 0.750" in inc and "return x * 2" in inc and "def activation(x)" in inc
    assert "$" not in inc
    nov = render("novelty", Context("activation", known))
    assert "do NOT propose" in nov and "built-in gelu" in nov
    empty = render("incremental", Context("regularizer"))
    assert "def regularizer(params)" in empty and "score not yet measured" in empty


def test_user_prompt_templates(tmp_path):
    (tmp_path / "incremental.txt").write_text("Kind: $component. Known:\n$examples\n")
    text = render("incremental", Context("preprocessing"), str(tmp_path))
    assert text.startswith("Kind: preprocessing function.")
    (tmp_path / "novelty.txt").write_text("Hello $nonsense")
    with pytest.raises(PromptError, match="nonsense"):
        render("novelty", Context("activation"), str(tmp_path))
    with pytest.raises(PromptError, match="not found"):
        render("novelty", Context("activation"), str(tmp_path / "missing"))


def test_prompts_carry_rejection_reasons_and_passages_and_are_unchanged_without(tmp_path):
    from mlr_mlflow.generate import Passage

    context = Context("activation", feedback=("import of 'os' is not allowed (rejected at the static stage)",),
                      passages=(Passage("paper.pdf#3", "paper.pdf", "A gated unit multiplies x by a gate."),))
    text = render("incremental", context)
    assert text.index("import of 'os'") < text.index("[paper.pdf#3]") < text.index("Propose ONE")
    plain = render("novelty", Context("activation"))
    assert "rejected" not in plain and "Passages" not in plain and "$" not in plain
    (tmp_path / "incremental.txt").write_text("Mine: $component\n")  # a template without $extras
    assert render("incremental", context, str(tmp_path)).endswith("A gated unit multiplies x by a gate.")


def test_symbolic_simplifies_trivial_identities_before_proposing():
    from mlr_mlflow.generate.symbolic import simplify_tree

    relu = ["u", "relu", ["x"]]
    assert simplify_tree(["b", "add", ["b", "sub", ["x"], ["x"]], relu]) == relu  # (x - x) + relu(x)
    assert simplify_tree(["u", "neg", ["u", "neg", relu]]) == relu
    assert simplify_tree(["u", "abs", relu]) == relu
    assert simplify_tree(["b", "max", relu, relu]) == relu
    assert simplify_tree(["k", 2.0, ["k", 0.5, relu]]) == relu
    assert simplify_tree(["b", "mul", ["b", "sub", relu, relu], ["x"]]) is None  # zero: nothing left
    assert simplify_tree(["u", "sigmoid", ["b", "sub", ["x"], ["x"]]]) is None  # a constant
    for kind in KINDS:  # what the generator proposes is already simplified
        for proposal in take(kind, n=200):
            tree = json.loads(proposal.origin["tags"]["mlr.symbolic.genome"])["f"]
            assert simplify_tree(tree) == tree and tree != ["x"], proposal.source


def test_the_symbolic_generator_skips_what_the_experiment_already_holds():
    """A round used to ask 66 proposals for 32 new ones: the generator proposed what the
    experiment had judged already. Given those hashes, it steps around them."""
    from mlr_mlflow.generate import Context
    from mlr_mlflow.generate.symbolic import SymbolicGenerator
    from mlr_mlflow.hypothesis import normalized_sha256

    def first(n, **context):
        proposals = SymbolicGenerator().propose(Context("activation", seed=0, **context))
        return [normalized_sha256(p.source) for p, _ in zip(proposals, range(n))]

    held = first(40)
    again = first(40, avoid=frozenset(held))
    assert len(set(held) & set(again)) <= 2 < len(set(held) & set(first(40)))
    assert len(set(again)) == len(again)  # nor does it repeat itself within a round


def test_every_generator_has_the_protocols_abilities_with_no_op_defaults():
    """A round calls tracing, trace ids and cost on any generator: the bundled ones inherit the
    defaults, one that only has `name` and `propose` gets them from `with_defaults`."""
    from mlr_mlflow.generate import Generator, Proposal, with_defaults
    from mlr_mlflow.generate.symbolic import SymbolicGenerator

    class Bare:
        name = "bare"

        def propose(self, context):
            yield Proposal("def activation(x):\n    return x\n")

    symbolic = SymbolicGenerator()
    assert with_defaults(symbolic) is symbolic
    bare = with_defaults(Bare())
    for g in (symbolic, bare):
        assert isinstance(g, Generator)
        assert g.enable_tracing("sqlite:///unused.db", "0") is None and g.tracing is False
        assert list(g.trace_ids) == [] and g.cost_usd == 0.0
    assert bare.name == "bare" and [p.source for p in bare.propose(None)] == ["def activation(x):\n    return x\n"]
