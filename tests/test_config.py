import pytest

from mlr_mlflow.config import Config, ConfigError, load_config, with_overrides


def test_defaults_need_no_file():
    config = load_config(None)
    assert config == Config()
    assert config.kinds["activation"].baselines == ("relu",)
    assert set(config.kinds["activation"].sota) == {"gelu", "silu", "mish", "elu"}


def test_toml_overrides_sections_and_reference_sets(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[model]\nhidden = [32]\n[suite]\ndatasets = ["iris"]\n'
                    '[kinds.activation]\nsota = ["gelu"]\n')
    config = load_config(path)
    assert config.model.hidden == (32,)
    assert config.suite.datasets == ("iris",)
    assert config.kinds["activation"].sota == ("gelu",)
    assert config.kinds["activation"].baselines == ("relu",)  # untouched keys keep defaults


@pytest.mark.parametrize("text, message", [
    ("[model]\nwidth = 3\n", "unknown key"),
    ("[nonsense]\n", "unknown top-level"),
    ("[kinds.attention]\n", "unknown kind"),
    ("[model\n", "not valid TOML"),
])
def test_bad_config_is_a_clear_error(tmp_path, text, message):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_missing_config_file():
    with pytest.raises(ConfigError, match="not found"):
        load_config("/nonexistent/mlr.toml")


def test_overrides_are_copies():
    base = Config()
    changed = with_overrides(base, model={"lr": 0.5})
    assert changed.model.lr == 0.5 and base.model.lr != 0.5


BAD_VALUES = {
    "string for an int": ('[discover]\nn = "32"\n', '[discover] n: expected a whole number >= 1, got "32"'),
    "below its range": ("[discover]\ntop_k = -4\n", "[discover] top_k: expected a whole number >= 0, got -4"),
    "string for a float": ('[model]\nlr = "fast"\n', '[model] lr: expected a number > 0, got "fast"'),
    "bool for an int": ("[model]\nbatch_size = true\n", "[model] batch_size: expected a whole number >= 1, got true"),
    "infinite float": ("[sandbox]\nprobe_timeout_s = inf\n", "[sandbox] probe_timeout_s: expected a number > 0"),
    "fraction of 1": ("[suite]\ntest_fraction = 1.0\n", "[suite] test_fraction: expected a number > 0 and < 1"),
    "a one-pass rate of 0": ("[model]\none_pass_lr = 0\n", "[model] one_pass_lr: expected a number > 0"),
    "a list element": ("[model]\nhidden = [64, 0]\n", "[model] hidden: expected a list of whole numbers, each >= 1"),
    "a string for a list": ('[suite]\ndatasets = "iris"\n', '[suite] datasets: expected a list of strings, got "iris"'),
    "a choice": ('[discover]\nscreen = "best"\n', '[discover] screen: expected one of "auto", "reward", "one-pass"'),
    "a bool field": ('[confirm]\nenabled = "yes"\n', '[confirm] enabled: expected true or false, got "yes"'),
    "a kind's table": ('[kinds.activation]\nsota = "gelu"\n', '[kinds.activation] sota: expected a list of strings'),
    "a task's field": ('[[suite.tasks]]\nname = "a"\ndataset = "iris"\n[[suite.tasks]]\nname = "b"\ndataset = 3\n',
                       '[[suite.tasks]] #2 dataset: expected a string, got 3'),
    "a task's missing key": ('[[suite.tasks]]\nname = "a"\n', "[[suite.tasks]] #1: missing key(s) dataset"),
    "a section that is no table": ("model = 3\n", "[model] must be a table, got int"),
    "the experiment prefix": ("experiment_prefix = 3\n", "experiment_prefix: expected a string, got 3"),
}


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_every_value_is_checked_on_load_naming_file_table_and_key(tmp_path, case):
    text, message = BAD_VALUES[case]
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert str(raised.value).startswith(f"{path}: {message}")
    assert "\n" not in str(raised.value)


def test_the_recorded_config_json_is_checked_too(tmp_path):
    import json

    data = Config().to_dict()
    data["model"]["lr"] = "fast"
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=r'\[model\] lr: expected a number > 0, got "fast"'):
        load_config(path)
    from mlr_mlflow.config import for_kind

    resolved = for_kind(Config(), "activation")  # what runs record
    assert load_config(_written(tmp_path / "ok.json", resolved.to_dict())) == resolved
    # a record whose one-pass rate no kind resolved trained one-pass at its lr
    unset = load_config(_written(tmp_path / "unset.json", Config().to_dict()))
    assert unset == with_overrides(Config(), model={"one_pass_lr": Config().model.lr})


def _written(path, data):
    import json

    path.write_text(json.dumps(data))
    return path


def test_good_values_load_as_their_types(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[model]\nlr = 1\nhidden = [8]\n[discover]\nexplore = 0\n")
    config = load_config(path)
    assert config.model.lr == 1 and config.model.hidden == (8,) and config.discover.explore == 0


def test_overrides_and_direct_construction_are_checked_the_same_way():
    from mlr_mlflow.config import DiscoverConfig, FieldError, ModelConfig

    with pytest.raises(FieldError, match=r"\[discover\] top_k: expected a whole number >= 0, got -4"):
        with_overrides(Config(), discover={"top_k": -4})
    with pytest.raises(FieldError, match=r"\[model\] lr"):
        ModelConfig(lr=float("nan"))
    with pytest.raises(FieldError, match=r"\[discover\] n: expected a whole number >= 1, got true"):
        DiscoverConfig(n=True)
    assert ModelConfig(hidden=[4, 4]).hidden == (4, 4)  # a list is kept as a tuple (hashable, comparable)


def test_a_checked_class_refuses_bounds_for_fields_it_does_not_have():
    from dataclasses import dataclass

    from mlr_mlflow.config.checks import at_least, checked

    with pytest.raises(TypeError, match="unknown field"):
        @dataclass(frozen=True)
        @checked("x", widht=at_least(1))
        class _X:
            width: int = 1


def test_a_config_file_every_user_may_write_is_refused(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[model]\nlr = 0.1\n")
    path.chmod(0o666)
    with pytest.raises(ConfigError, match="writable by every user"):
        load_config(path)
    path.chmod(0o644)
    assert load_config(path).model.lr == 0.1


BAD_CONFIGS = {  # what a user gets wrong, and the key the one-line error must name
    "a string for a number": ('[model]\nlr = "fast"\n', "lr"),
    "out of range": ("[discover]\ntop_k = -4\n", "top_k"),
    "an unknown key": ("[model]\nwidht = 3\n", "widht"),
    "a wrong type in a nested table": ('[kinds.activation]\nsota = "gelu"\n', "sota"),
}
VERBS = {  # every verb that takes --config, with what it needs besides
    "validate": ["validate", "h.py", "--kind", "activation"],
    "evaluate": ["evaluate", "h.py", "--kind", "activation"],
    "discover": ["discover", "--kind", "activation", "--n", "1"],
    "reward": ["reward", "train", "--kind", "activation"],
    "suite check": ["suite", "check", "--kind", "activation"],
    "sandbox check": ["sandbox", "check"],
    "audit": ["audit", "--sample", "1"],
    "scheduler": ["scheduler", "run-now", "nightly-activation"],
    "dashboard": ["dashboard"],
}
MATRIX = """
import contextlib, io, json, os, sys
from mlr_mlflow.cli import main
cases, verbs, root = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
out = {}
for case, (text, _) in cases.items():
    for verb, argv in verbs.items():
        here = os.path.join(root, f"{len(out)}")
        os.makedirs(here)
        os.chdir(here)
        open("h.py", "w").write("import torch\\ndef activation(x):\\n    return torch.relu(x)\\n")
        open("bad.toml", "w").write(text)
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main([*argv, "--config", "bad.toml"])
        out[f"{case} | {verb}"] = [code, err.getvalue(), sorted(set(os.listdir(".")) - {"h.py", "bad.toml"})]
print(json.dumps(out))
"""


def test_a_bad_config_stops_every_verb_with_one_line_before_anything_is_written_or_probed(tmp_path):
    """Through the CLI, in a fresh process (the sandbox announces its backend once per process, on
    its first probe): exit 2, one line naming the key, no store created (no mlflow.db, no runs), and
    no sandbox probed (its announcement never shows)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    root = Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-c", MATRIX, json.dumps(BAD_CONFIGS), json.dumps(VERBS),
                           str(tmp_path)], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    wrong = []
    for name, (code, err, created) in results.items():
        key = BAD_CONFIGS[name.split(" | ")[0]][1]
        lines = err.strip().splitlines()
        probed = any(line.startswith("sandbox: ") for line in lines)  # describe_backend's line
        if code != 2 or len(lines) != 1 or key not in lines[0] or created or probed:
            wrong.append(f"{name}: exit {code}, created {created}, said {err.strip()!r}")
    assert not wrong, "\n".join(wrong)


def test_the_win_rule_is_accuracy_unless_the_config_names_loss(tmp_path):
    from mlr_mlflow.config import config_from_dict

    assert Config().compare.metric == "accuracy"
    path = tmp_path / "c.toml"
    path.write_text('[compare]\nmetric = "loss"\n')
    assert load_config(path).compare.metric == "loss"
    path.write_text('[compare]\nmetric = "f1"\n')
    with pytest.raises(ConfigError, match="metric"):
        load_config(path)
    # a config.json recorded before the key existed was judged by accuracy, as the default is
    old = Config().to_dict()
    del old["compare"]["metric"]
    assert config_from_dict(old).compare.metric == "accuracy"


def test_the_one_pass_rate_is_the_kinds_measured_default_unless_the_config_sets_it(tmp_path):
    from mlr_mlflow.config import for_kind
    from mlr_mlflow.config.evaluation import ONE_PASS_LR

    config = Config()
    assert config.model.one_pass_lr is None  # unset until a kind resolves it
    assert for_kind(config, "activation").model.one_pass_lr == ONE_PASS_LR["activation"] != config.model.lr
    for kind in ("preprocessing", "regularizer"):  # measured at `lr`: they keep it
        assert for_kind(config, kind).model.one_pass_lr == config.model.lr
    path = tmp_path / "c.toml"
    path.write_text("[model]\none_pass_lr = 0.004\nlr = 0.003\n")
    mine = load_config(path)
    assert for_kind(mine, "activation").model.one_pass_lr == 0.004 and for_kind(mine, "activation").model.lr == 0.003


def test_a_recorded_config_from_before_the_one_pass_rate_trained_one_pass_at_its_lr(tmp_path):
    import dataclasses
    import json

    from mlr_mlflow.config import config_from_dict, for_kind, recorded_config

    old = for_kind(Config(), "activation").to_dict()
    old["model"].pop("one_pass_lr")  # as every run recorded it before the key existed
    old["model"]["lr"] = 0.007
    assert recorded_config(old).model.one_pass_lr == 0.007
    assert for_kind(recorded_config(old), "activation").model.one_pass_lr == 0.007  # not the kind's default
    path = tmp_path / "config.json"  # what an audit's re-execution loads
    path.write_text(json.dumps(old))
    assert load_config(path).model.one_pass_lr == 0.007
    assert config_from_dict(old).model.one_pass_lr is None  # a TOML-like table: the kind decides
    partial = {"model": {"lr": 0.007}}  # not a recorded table: the kind decides
    assert recorded_config(partial).model.one_pass_lr is None
    new = for_kind(Config(), "activation")
    assert recorded_config(new.to_dict()) == new and dataclasses.asdict(new.model)["one_pass_lr"] == 0.02
