"""Every MLflow name lives in mlr_mlflow/tracking/names.py, and docs/reference.md lists each one."""
import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mlr_mlflow"
NAMES = PACKAGE / "tracking" / "names.py"
REFERENCE = ROOT / "docs" / "reference.md"


def names_constants() -> dict[str, str]:
    """The module-level string constants of names.py: constant -> value."""
    out = {}
    for node in ast.parse(NAMES.read_text()).body:
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)):
            for target in node.targets:
                out[target.id] = node.value.value
    return out


def mlr_literals(source: str) -> list[tuple[int, str]]:
    """(line, text) of every string constant that starts an `mlr.` name, f-string parts included."""
    return [(node.lineno, node.value) for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and node.value.startswith("mlr.")]


def documented(value: str, text: str) -> bool:
    """Named in the reference as `value`, `tag=value` or, for a prefix (`mlr.task.`), `value<...>`:
    a longer name that starts with it does not count."""
    end = "" if value.endswith((".", "_", "-")) else r"(?=[`=])"
    return re.search(r"[`=]" + re.escape(value) + end, text) is not None


def test_every_name_in_names_py_is_documented_in_the_reference():
    text = REFERENCE.read_text()
    constants = names_constants()
    assert len(constants) > 50  # the scan found names.py's constants
    missing = sorted(f"{name} = {value!r}" for name, value in constants.items()
                     if not documented(value, text))
    assert not missing, "add to docs/reference.md:\n" + "\n".join(missing)


def test_no_mlr_name_is_spelled_outside_names_py():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == NAMES:
            continue
        found += [f"{path.relative_to(ROOT)}:{line}: {text!r}"
                  for line, text in mlr_literals(path.read_text())]
    assert not found, "use a constant of tracking/names.py:\n" + "\n".join(found)


def test_the_scan_sees_plain_and_f_string_names_but_not_prose():
    source = ('a = "mlr.kind"\n'
              'b = f"mlr.promotion.v{1}"\n'
              'c = "the tag mlr.kind says which"\n'
              'd = names.KIND\n')
    assert mlr_literals(source) == [(1, "mlr.kind"), (2, "mlr.promotion.v")]


def test_the_reference_check_needs_the_name_itself_not_a_longer_one():
    assert documented("mlr.kind", "tags `mlr.kind`, ...")
    assert documented("suite-check", "`mlr.role=suite-check`")
    assert documented("mlr.task.", "`mlr.task.<name>`")
    assert not documented("mlr.screen", "`mlr.screen.pick`")
    assert not documented("proposals", "the round's proposals")
