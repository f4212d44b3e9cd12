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
