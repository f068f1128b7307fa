import re
from pathlib import Path

import pytest
import yaml

from mdl.config import SETTINGS, load
from mdl.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_precedence_flag_env_context_file_default(tmp_path):
    p = write(tmp_path, "transfer:\n  jobs: 2\noutput: json\nstorage:\n  timeout: 5\n"
                        "contexts:\n  prod:\n    transfer:\n      jobs: 3\n    storage:\n      timeout: 7\n")
    c = load(env={}, config_path=p)
    assert (c["transfer.jobs"], c.origin("transfer.jobs")) == (2, f"file {p}")
    assert (c["progress"], c.origin("progress")) == ("auto", "default")
    c = load(env={"MDL_CONTEXT": "prod"}, config_path=p)
    assert (c["transfer.jobs"], c.origin("transfer.jobs")) == (3, f"file {p} (context prod)")
    c = load(env={"MDL_TRANSFER_JOBS": "6"}, config_path=p, context="prod")
    assert (c["transfer.jobs"], c.origin("transfer.jobs")) == (6, "env MDL_TRANSFER_JOBS")
    assert c["storage.timeout"] == 7.0
    c = load(flags={"transfer.jobs": 9}, env={"MDL_TRANSFER_JOBS": "6"}, config_path=p)
    assert (c["transfer.jobs"], c.origin("transfer.jobs")) == (9, "flag")


def test_current_context_from_file(tmp_path):
    p = write(tmp_path, "current-context: a\ncontexts:\n  a:\n    output: json\n")
    assert load(env={}, config_path=p)["output"] == "json"


@pytest.mark.parametrize("text,needle", [
    ("nope: 1\n", "unknown configuration key 'nope'"),
    ("storage:\n  urll: x\n", "unknown configuration key 'storage.urll'"),
    ("transfer:\n  jobs: many\n", "transfer.jobs"),
    ("transfer:\n  jobs: -1\n", "must be positive"),
    ("output: xml\n", "must be one of table, wide, json"),
    ("storage: file:///x\n", "storage in"),
    ("storage: file:///x\n", "must be a mapping of storage.* keys"),
    ("[1, 2]\n", "must hold a mapping"),
    ("a: [\n", "not valid YAML"),
    ("contexts:\n  a:\n    bad: 1\n", "unknown configuration key 'bad'"),
])
def test_bad_files_name_the_key_and_file(tmp_path, text, needle):
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load(env={}, config_path=p)
    assert needle in err.value.message and err.value.exit_code == 7


def test_unknown_context_and_missing_explicit_file(tmp_path):
    with pytest.raises(ConfigError, match="context 'x' is not defined"):
        load(env={}, config_path=write(tmp_path, "output: json\n"), context="x")
    with pytest.raises(ConfigError, match="does not exist"):
        load(env={}, config_path=tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="MDL_TRANSFER_JOBS"):
        load(env={"MDL_TRANSFER_JOBS": "x"}, config_path=None)


def test_example_config_documents_every_key_and_loads():
    example = ROOT / "config.example.yaml"
    text = example.read_text()
    doc = yaml.safe_load(text)
    flat = set()

    def walk(d, prefix=""):
        for k, v in d.items():
            if isinstance(v, dict) and k != "contexts":
                walk(v, prefix + k + ".")
            elif k not in ("contexts", "current-context"):
                flat.add(prefix + k)

    walk(doc)
    assert flat == {s.key for s in SETTINGS}
    for s in SETTINGS:
        leaf = s.key.rsplit(".", 1)[-1]
        assert re.search(rf"#.*\n\s*{re.escape(leaf)}:", text), f"{s.key} has no comment"
    load(env={}, config_path=example)


@pytest.mark.parametrize("text,needle", [
    ("current-context: [a]\ncontexts:\n  a: {}\n", "current-context in"),
    ("current-context: {a: 1}\n", "must be a context name"),
    ("current-context: 7\ncontexts:\n  '7': {}\n", "must be a context name"),
    ("contexts: [a]\n", "contexts in"),
    ("contexts: ''\n", "must be a mapping of context names"),
    ("contexts:\n  1: {}\n", "context name 1"),
    ("contexts:\n  null: {}\n", "context name None"),
    ("contexts:\n  \"a\\nb\": {}\n", "without control characters"),
    ("current-context: a\ncontexts:\n  a: [output, json]\n", "context 'a'"),
    ("contexts:\n  a: 5\n", "must be a mapping"),
    ("1: x\n", "configuration key 1 in"),
    ("storage:\n  true: x\n", "configuration key True in"),
    ("storage:\n  timeout: .nan\n", "storage.timeout in"),
    ("storage:\n  timeout: .nan\n", "must be a finite number"),
    ("storage:\n  timeout: .inf\n", "must be a finite number"),
    ("storage:\n  timeout: -.inf\n", "must be a finite number"),
    ("storage:\n  timeout: 0\n", "must be positive"),
    ("storage:\n  timeout: 1e999\n", "must be a finite number"),
    ("storage:\n  timeout: 100000\n", "must be at most 86400"),
    ("storage:\n  timeout: [1]\n", "must be a number, got a list"),
    ("storage:\n  timeout: {a: 1}\n", "must be a number, got a mapping"),
    ("storage:\n  timeout: true\n", "must be a number, got True"),
    ("storage:\n  timeout: 2024-01-01\n", "must be a number"),
    ("storage:\n  retries: 1.5\n", "must be a whole number"),
    ("storage:\n  retries: .inf\n", "must be a whole number"),
    ("storage:\n  retries: 1000\n", "must be at most 100"),
    ("transfer:\n  jobs: 1000000000\n", "must be at most 64"),
    ("storage:\n  url: [file:///x]\n", "must be a string, got a list"),
    ("storage:\n  url: {a: b}\n", "must be a string, got a mapping"),
    ("storage:\n  url: true\n", "must be a string, got True"),
    ("storage:\n  url: \"file:///x\\0y\"\n", "must not contain control characters"),
    ("cache:\n  dir: \"/a\\nb\"\n", "must not contain control characters"),
    ("output: [json]\n", "output in"),
    ("progress: 1\n", "must be one of auto, always, never"),
    ("registry: [a]\n", "must be a mapping of registry.* keys"),
    ("storage:\n  url:\n    deeper: 1\n", "storage.url in"),
    ("storage:\n  nested:\n    deeper: 1\n", "unknown configuration key 'storage.nested'"),
    ("a: &a [*a]\n", "unknown configuration key 'a'"),
    ("storage: &s {url: x, more: *s}\n", "unknown configuration key 'storage.more'"),
    ("? [a, b]\n: 1\n", "not valid YAML"),
    ("\"\\ud800\": 1\n", "unknown configuration key '\\ud800'"),
])
def test_wrong_values_of_every_type_are_config_errors(tmp_path, text, needle):
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load(env={}, config_path=p)
    assert needle in err.value.message, err.value.message
    assert str(p) in err.value.message and "\n" not in err.value.message and err.value.exit_code == 7


def test_a_file_that_is_not_utf8_is_a_config_error(tmp_path):
    p = tmp_path / "latin1.yaml"
    p.write_bytes("output: json # caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="is not UTF-8 text") as err:
        load(env={}, config_path=p)
    assert err.value.exit_code == 7 and str(p) in err.value.message
    d = tmp_path / "a-directory.yaml"
    d.mkdir()
    with pytest.raises(ConfigError, match="cannot read config file"):
        load(env={}, config_path=d)


@pytest.mark.parametrize("var,value,needle", [
    ("MDL_STORAGE_TIMEOUT", "nan", "must be a finite number"),
    ("MDL_STORAGE_TIMEOUT", "inf", "must be a finite number"),
    ("MDL_STORAGE_TIMEOUT", "-inf", "must be a finite number"),
    ("MDL_STORAGE_TIMEOUT", "1e999", "must be a finite number"),
    ("MDL_STORAGE_TIMEOUT", "-1", "must be positive"),
    ("MDL_STORAGE_TIMEOUT", "ten", "must be a number"),
    ("MDL_REGISTRY_TIMEOUT", "NaN", "must be a finite number"),
    ("MDL_REGISTRY_TIMEOUT", "0", "must be positive"),
    ("MDL_TRANSFER_JOBS", "0", "must be positive"),
    ("MDL_TRANSFER_JOBS", "-1", "must be positive"),
    ("MDL_TRANSFER_JOBS", "1e9", "must be a whole number"),
    ("MDL_TRANSFER_JOBS", "1000000000", "must be at most 64"),
    ("MDL_TRANSFER_JOBS", "2.5", "must be a whole number"),
    ("MDL_STORAGE_RETRIES", "nan", "must be a whole number"),
    ("MDL_OUTPUT", "xml", "must be one of table, wide, json"),
    ("MDL_PROGRESS", "sometimes", "must be one of auto, always, never"),
    ("MDL_STORAGE_URL", "file:///a\tb", "must not contain control characters"),
])
def test_bad_env_values_are_config_errors(var, value, needle):
    with pytest.raises(ConfigError) as err:
        load(env={var: value}, config_path=None)
    assert err.value.message.startswith(f"{BY_KEY_OF[var]} in env {var} ") and needle in err.value.message
    assert err.value.exit_code == 7


BY_KEY_OF = {s.env: s.key for s in SETTINGS}


def test_good_edge_values_still_load(tmp_path):
    p = write(tmp_path, "storage:\n  timeout: 0.5\n  retries: 100\n  user: null\ntransfer:\n  jobs: 64.0\n"
                        "progress: null\ncontexts:\ncurrent-context:\ncache:\n")
    c = load(env={"MDL_REGISTRY_TIMEOUT": "86400"}, config_path=p)
    assert (c["storage.timeout"], c["storage.retries"], c["transfer.jobs"], c["registry.timeout"]) == (
        0.5, 100, 64, 86400.0)
    assert c.context is None and c["progress"] == "auto" and c["storage.user"] is None
