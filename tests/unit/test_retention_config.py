import pytest

from mdl.config import BY_KEY, load, show_value
from mdl.errors import ConfigError

RULE = "a model name must match [A-Za-z0-9][A-Za-z0-9._-]*, be at most 128 characters and not contain '..'"


def write(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def retention(cfg):
    return {k: cfg[k] for k in BY_KEY if k.startswith("retention.")}


def test_defaults():
    cfg = load(env={}, config_path=None)
    assert retention(cfg) == {
        "retention.keep_last": None,
        "retention.keep_days": None,
        "retention.grace": 3600.0,
        "retention.rollback_window": 3,
        "retention.models": None,
    }
    assert cfg.origin("retention.grace") == "default"


def test_every_key_from_a_file_with_zero_where_zero_is_allowed(tmp_path):
    p = write(tmp_path, "retention:\n  keep_last: 1\n  keep_days: 0\n  grace: 0\n  rollback_window: 0\n  models:\n"
                        "    fraud-detector:\n      keep_last: 50\n      keep_days: 2.5\n      grace: 600\n"
                        "    scratch:\n      keep_days: null\n      grace: null\n    plain:\n")
    cfg = load(env={}, config_path=p)
    assert retention(cfg) == {
        "retention.keep_last": 1,
        "retention.keep_days": 0.0,
        "retention.grace": 0.0,
        "retention.rollback_window": 0,
        "retention.models": {
            "fraud-detector": {"keep_last": 50, "keep_days": 2.5, "grace": 600.0},
            "scratch": {"keep_days": None},  # no age rule for scratch; its grace is retention.grace
            "plain": {},
        },
    }
    assert cfg.origin("retention.models") == f"file {p}"


def test_upper_limits_and_negative_zero_load(tmp_path):
    p = write(tmp_path, "retention:\n  keep_last: 1000000\n  keep_days: 36500\n  grace: -0.0\n"
                        "  rollback_window: 1000\n  models:\n    a: {grace: 31536000, keep_days: -0.0}\n")
    cfg = load(env={}, config_path=p)
    assert (cfg["retention.keep_last"], cfg["retention.keep_days"], cfg["retention.rollback_window"]) == (
        1000000, 36500.0, 1000)
    assert str(cfg["retention.grace"]) == "0.0" and str(cfg["retention.models"]["a"]["keep_days"]) == "0.0"


def test_env_variables(tmp_path):
    cfg = load(env={"MDL_RETENTION_KEEP_LAST": "7", "MDL_RETENTION_KEEP_DAYS": "1.5", "MDL_RETENTION_GRACE": "0",
                    "MDL_RETENTION_ROLLBACK_WINDOW": "0",
                    "MDL_RETENTION_MODELS": '{"fraud": {"keep_last": 2, "grace": null}}'}, config_path=None)
    assert retention(cfg) == {
        "retention.keep_last": 7,
        "retention.keep_days": 1.5,
        "retention.grace": 0.0,
        "retention.rollback_window": 0,
        "retention.models": {"fraud": {"keep_last": 2}},
    }
    assert cfg.origin("retention.models") == "env MDL_RETENTION_MODELS"


def test_a_context_sets_retention(tmp_path):
    p = write(tmp_path, "retention:\n  keep_last: 5\ncontexts:\n  prod:\n    retention:\n      keep_last: 50\n"
                        "      models:\n        fraud: {keep_days: 90}\n")
    cfg = load(env={}, config_path=p, context="prod")
    assert (cfg["retention.keep_last"], cfg["retention.models"]) == (50, {"fraud": {"keep_days": 90.0}})


def test_mdl_config_shows_a_mapping_as_json():
    assert show_value({"b": {"keep_days": None}, "a": {"keep_last": 3}}) == (
        '{"a": {"keep_last": 3}, "b": {"keep_days": null}}')
    assert (show_value(None), show_value(3600.0), show_value({})) == ("-", "3600.0", "{}")


@pytest.mark.parametrize("text,message", [
    # the scalar keys
    ("retention:\n  keep_last: 0\n", "retention.keep_last in {p} must be positive, got 0"),
    ("retention:\n  keep_last: -3\n", "retention.keep_last in {p} must be positive, got -3"),
    ("retention:\n  keep_last: 2.5\n", "retention.keep_last in {p} must be a whole number, got 2.5"),
    ("retention:\n  keep_last: true\n", "retention.keep_last in {p} must be a whole number, got True"),
    ("retention:\n  keep_last: five\n", "retention.keep_last in {p} must be a whole number, got 'five'"),
    ("retention:\n  keep_last: .nan\n", "retention.keep_last in {p} must be a whole number, got nan"),
    ("retention:\n  keep_last: [5]\n", "retention.keep_last in {p} must be a whole number, got a list"),
    ("retention:\n  keep_last: {a: {b: {c: 1}}}\n",
     "retention.keep_last in {p} must be a whole number, got a mapping"),
    ("retention:\n  keep_last: 99999999999999999999999999\n",
     "retention.keep_last in {p} must be at most 1000000, got 99999999999999999999999999"),
    ("retention:\n  keep_days: -1\n", "retention.keep_days in {p} must be at least 0, got -1"),
    ("retention:\n  keep_days: .nan\n", "retention.keep_days in {p} must be a finite number, got nan"),
    ("retention:\n  keep_days: .inf\n", "retention.keep_days in {p} must be a finite number, got inf"),
    ("retention:\n  keep_days: 1" + "0" * 400 + "\n",
     "retention.keep_days in {p} must be a finite number, got 1" + "0" * 76 + "..."),
    ("retention:\n  keep_days: 36501\n", "retention.keep_days in {p} must be at most 36500, got 36501"),
    ("retention:\n  keep_days: false\n", "retention.keep_days in {p} must be a number, got False"),
    ("retention:\n  keep_days: 2024-01-01\n",
     "retention.keep_days in {p} must be a number, got datetime.date(2024, 1, 1)"),
    ("retention:\n  grace: -0.5\n", "retention.grace in {p} must be at least 0, got -0.5"),
    ("retention:\n  grace: 31536001\n", "retention.grace in {p} must be at most 31536000, got 31536001"),
    ("retention:\n  grace: 1h\n", "retention.grace in {p} must be a number, got '1h'"),
    ("retention:\n  rollback_window: -1\n", "retention.rollback_window in {p} must be at least 0, got -1"),
    ("retention:\n  rollback_window: 1001\n", "retention.rollback_window in {p} must be at most 1000, got 1001"),
    ("retention:\n  rollback_window: yes\n", "retention.rollback_window in {p} must be a whole number, got True"),
    ("retention: 5\n", "retention in {p} must be a mapping of retention.* keys, got 5"),
    ("retention:\n  keep_lsat: 5\n", "unknown configuration key 'retention.keep_lsat' in {p}"),
    ("retention:\n  model: {}\n", "unknown configuration key 'retention.model' in {p}"),
    # retention.models
    ("retention:\n  models: [fraud]\n", "retention.models in {p} must be a mapping of model names, got a list"),
    ("retention:\n  models: fraud\n", "retention.models in {p} must be a mapping of model names, got 'fraud'"),
    ("retention:\n  models: 3\n", "retention.models in {p} must be a mapping of model names, got 3"),
    ("retention:\n  models:\n    fraud: 5\n",
     "retention.models.fraud in {p} must be a mapping of keep_last, keep_days, grace, got 5"),
    ("retention:\n  models:\n    fraud: [1]\n",
     "retention.models.fraud in {p} must be a mapping of keep_last, keep_days, grace, got a list"),
    ("retention:\n  models:\n    fraud:\n      keep_lats: 5\n",
     "unknown configuration key 'retention.models.fraud.keep_lats' in {p}"),
    ("retention:\n  models:\n    fraud:\n      rollback_window: 5\n",
     "unknown configuration key 'retention.models.fraud.rollback_window' in {p}"),
    ("retention:\n  models:\n    fraud:\n      1: 5\n",
     "configuration key 1 in {p} must be a string (under retention.models.fraud)"),
    ("retention:\n  models:\n    fraud:\n      keep_last: 0\n",
     "retention.models.fraud.keep_last in {p} must be positive, got 0"),
    ("retention:\n  models:\n    fraud:\n      keep_last: false\n",
     "retention.models.fraud.keep_last in {p} must be a whole number, got False"),
    ("retention:\n  models:\n    fraud:\n      keep_days: -.inf\n",
     "retention.models.fraud.keep_days in {p} must be a finite number, got -inf"),
    ("retention:\n  models:\n    fraud:\n      grace: -1\n",
     "retention.models.fraud.grace in {p} must be at least 0, got -1"),
    ("retention:\n  models:\n    fraud:\n      grace: {deep: [[[1]]]}\n",
     "retention.models.fraud.grace in {p} must be a number, got a mapping"),
    ("retention:\n  models:\n    fraud:\n      keep_last: 10000000000000000000000\n",
     "retention.models.fraud.keep_last in {p} must be at most 1000000, got 10000000000000000000000"),
    ("retention:\n  models:\n    a b: {}\n", f"retention.models in {{p}} names an invalid model 'a b': {RULE}"),
    ("retention:\n  models:\n    '..': {}\n", f"retention.models in {{p}} names an invalid model '..': {RULE}"),
    ("retention:\n  models:\n    '': {}\n", f"retention.models in {{p}} names an invalid model '': {RULE}"),
    ("retention:\n  models:\n    \"a\\nb\": {}\n", f"retention.models in {{p}} names an invalid model 'a\\nb': {RULE}"),
    ("retention:\n  models:\n    " + "m" * 129 + ": {}\n",
     f"retention.models in {{p}} names an invalid model '{'m' * 76}...: {RULE}"),
    ("retention:\n  models:\n    2024: {}\n", "model name 2024 under retention.models in {p} must be a string"),
    ("retention:\n  models:\n    true: {}\n", "model name True under retention.models in {p} must be a string"),
    ("retention:\n  models:\n    null: {}\n", "model name None under retention.models in {p} must be a string"),
    ("retention:\n  models: &m {a: *m}\n", "unknown configuration key 'retention.models.a.a' in {p}"),
    ("retention:\n  models:\n    a: &m {keep_last: *m}\n",
     "retention.models.a.keep_last in {p} must be a whole number, got a mapping"),
    ("retention:\n  models:\n    a:\n      keep_last:\n" + "".join(f"{'  ' * (i + 4)}k{i}:\n" for i in range(50))
     + "  " * 54 + "deep: 1\n",
     "retention.models.a.keep_last in {p} must be a whole number, got a mapping"),
    ("retention:\n  models: " + "[" * 100_000 + "\n", "config file '{p}' is not valid YAML"),
])
def test_hostile_values_are_one_exact_line(tmp_path, text, message):
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load(env={}, config_path=p)
    assert err.value.message == message.format(p=p) and err.value.exit_code == 7


@pytest.mark.parametrize("text,hint", [
    ("retention:\n  keep_lsat: 5\n", "did you mean 'retention.keep_last'? see config.example.yaml for every key"),
    ("keep_days: 5\n", "did you mean 'retention.keep_days'? see config.example.yaml for every key"),
    ("retention:\n  models:\n    fraud:\n      keep_lats: 5\n",
     "did you mean 'retention.models.fraud.keep_last'? a model may set keep_last, keep_days, grace"),
    ("retention:\n  models:\n    fraud:\n      rollback_window: 5\n", "a model may set keep_last, keep_days, grace"),
    ("retention:\n  models:\n    2024: {}\n", "quote it: '2024'"),
    ("retention:\n  models:\n    true: {}\n", RULE),
    ("retention:\n  models: fraud\n",
     'e.g. {"fraud-detector": {"keep_last": 50}} (JSON in an environment variable); see config.example.yaml'),
])
def test_mistakes_get_a_hint(tmp_path, text, hint):
    with pytest.raises(ConfigError) as err:
        load(env={}, config_path=write(tmp_path, text))
    assert err.value.hint == hint


@pytest.mark.parametrize("var,value,message", [
    ("MDL_RETENTION_KEEP_LAST", "0", "must be positive, got '0'"),
    ("MDL_RETENTION_KEEP_LAST", "1e3", "must be a whole number, got '1e3'"),
    ("MDL_RETENTION_KEEP_DAYS", "nan", "must be a finite number, got 'nan'"),
    ("MDL_RETENTION_KEEP_DAYS", "-1", "must be at least 0, got '-1'"),
    ("MDL_RETENTION_GRACE", "1h", "must be a number, got '1h'"),
    ("MDL_RETENTION_ROLLBACK_WINDOW", "-1", "must be at least 0, got '-1'"),
    ("MDL_RETENTION_MODELS", "fraud=3", "must be a mapping of model names, got 'fraud=3'"),
    ("MDL_RETENTION_MODELS", "[" * 100_000, "must be a mapping of model names, got '" + "[" * 76 + "..."),
    ("MDL_RETENTION_MODELS", "[1]", "must be a mapping of model names, got '[1]'"),
    ("MDL_RETENTION_MODELS", "7", "must be a mapping of model names, got '7'"),
])
def test_bad_env_values(var, value, message):
    key = var[4:].lower().replace("retention_", "retention.", 1)
    with pytest.raises(ConfigError) as err:
        load(env={var: value}, config_path=None)
    assert err.value.message == f"{key} in env {var} {message}" and err.value.exit_code == 7


def test_bad_model_entries_in_env_name_the_model():
    with pytest.raises(ConfigError) as err:
        load(env={"MDL_RETENTION_MODELS": '{"fraud": {"grace": -5}}'}, config_path=None)
    assert err.value.message == "retention.models.fraud.grace in env MDL_RETENTION_MODELS must be at least 0, got -5"
    with pytest.raises(ConfigError) as err:
        load(env={"MDL_RETENTION_MODELS": '{"../etc": {}}'}, config_path=None)
    assert err.value.message == f"retention.models in env MDL_RETENTION_MODELS names an invalid model '../etc': {RULE}"
