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
    assert load_config(_written(tmp_path / "ok.json", Config().to_dict())) == Config()


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
