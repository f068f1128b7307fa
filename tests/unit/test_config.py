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
    ("output: xml\n", "must be one of table, json"),
    ("storage: file:///x\n", "unknown configuration key 'storage'"),
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
