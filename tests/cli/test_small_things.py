"""Small things that erode trust: units, ages, grammar, where the config was looked for, key typos,
the bootstrap's banner."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from mdl.cli.common import age, human_bytes, plural, timestamp
from mdl.config import load
from mdl.errors import ConfigError, IntegrityError, InvalidInput
from mdl.manifest import Manifest
from mdl.names import validate_alias, validate_name

from ..helpers import REPO

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z


@pytest.mark.parametrize("seconds,shown", [
    (0, "0s"), (5, "5s"), (119, "119s"), (120, "2m"), (3 * 60 + 59, "3m"), (119 * 60, "119m"),
    (2 * 3600, "2h"), (47 * 3600, "47h"), (48 * 3600, "2d"), (4 * 86400 + 5, "4d"), (400 * 86400, "400d"),
])
def test_age_reads_like_kubectl(seconds, shown):
    from datetime import datetime, timezone

    iso = datetime.fromtimestamp(NOW - seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert age(iso, now=NOW) == shown


def test_age_and_timestamp_of_nothing_or_garbage():
    assert (age(None), age(""), age("yesterday"), timestamp(None)) == ("-", "-", "-", "-")
    assert age("2027-01-15T08:00:10Z", now=NOW) == "0s"  # a clock a little ahead is not a negative age


def test_timestamps_end_in_z_everywhere():
    assert timestamp("2026-11-27T17:13:00.123456Z") == "2026-11-27 17:13:00Z"


def test_one_unit_system():
    assert [human_bytes(n) for n in (9, 2048, 5 * 1024**2, 3 * 1024**3)] == ["9 B", "2.0 KiB", "5.0 MiB", "3.0 GiB"]


def test_plurals():
    assert [plural(n, "file") for n in (0, 1, 2)] == ["0 files", "1 file", "2 files"]


def test_push_and_pull_count_files_in_english(cli, tmp_path):
    one = tmp_path / "one.pkl"
    one.write_bytes(b"\x80\x04w")
    r = cli("push", "lr", str(one), "--version", "v1", "--promote")
    assert r.stderr.startswith("pushed lr/v1: 1 file, 3 B, sha256:")
    two = tmp_path / "two"
    two.mkdir()
    (two / "a.bin").write_bytes(b"a")
    (two / "b.bin").write_bytes(b"b")
    r = cli("push", "pair", str(two), "--version", "p1", "--promote")
    assert r.stderr.startswith("pushed pair/p1: 2 files, 2 B, sha256:")
    r = cli("pull", "pair", "-d", str(tmp_path / "out"))
    assert r.stderr == "pulled pair/p1: 2 files, 2 B, verified\n"


def test_clean_counts_in_english(cli, tmp_path, client):
    model = tmp_path / "m.pkl"
    model.write_bytes(b"\x80\x04w")
    cli("push", "lr", str(model), "--version", "v1")
    r = cli("clean", "--older-than", "0", "--dry-run")
    assert r.stderr == "would remove 0 staging paths\n"
    client.storage.stage("lr", "v2").upload("m.pkl", model)
    client.storage.stage("lr", "v3").upload("m.pkl", model)
    assert cli("clean", "--older-than", "0").stderr == "removed 2 staging paths\n"


def test_names_rules_say_an_alias_and_a_model_name():
    with pytest.raises(InvalidInput) as err:
        validate_alias("../x")
    assert err.value.message.startswith("invalid alias '../x': an alias must match ")
    with pytest.raises(InvalidInput) as err:
        validate_alias("")
    assert err.value.hint is not None and err.value.hint.startswith("an alias must match ")
    with pytest.raises(InvalidInput) as err:
        validate_name("-x")
    assert err.value.message.startswith("invalid model name '-x': a model name must match ")


def test_manifest_types_are_named_in_english():
    doc = {"name": "lr", "version": "v1", "files": [{"path": "m", "size": "9", "sha256": "0" * 64}]}
    with pytest.raises(IntegrityError) as err:
        Manifest.from_json(json.dumps(doc).encode())
    assert err.value.message == "manifest is not a valid mdl manifest ('size' must be an integer)"


def test_config_says_where_it_looked(cli, tmp_path):
    home = tmp_path / "xdg"
    r = cli("config", env={"XDG_CONFIG_HOME": str(home), "MDL_CONFIG": ""})
    assert r.exit_code == 0
    assert r.stderr == (
        f"config file: none (looked for {home}/mdl/config.yaml; create it, or name one with --config or MDL_CONFIG)\n"
    )
    doc = json.loads(cli("config", "-o", "json", env={"XDG_CONFIG_HOME": str(home), "MDL_CONFIG": ""}).stdout)
    assert (doc["file"], doc["looked_for"]) == (None, f"{home}/mdl/config.yaml")
    (home / "mdl").mkdir(parents=True)
    (home / "mdl" / "config.yaml").write_text("transfer:\n  jobs: 2\n")
    r = cli("config", env={"XDG_CONFIG_HOME": str(home), "MDL_CONFIG": ""})
    assert r.stderr == f"config file: {home}/mdl/config.yaml\n"


@pytest.mark.parametrize("text,hint", [
    ("storage:\n  urll: x\n", "did you mean 'storage.url'? see config.example.yaml for every key"),
    ("registery:\n  url: x\n", "did you mean 'registry'? see config.example.yaml for every key"),
    ("outptu: json\n", "did you mean 'output'? see config.example.yaml for every key"),
    ("url: file:///x\n", "did you mean 'storage.url'? see config.example.yaml for every key"),
    ("contexts:\n  a:\n    transfer:\n      job: 2\n",
     "did you mean 'transfer.jobs'? see config.example.yaml for every key"),
    ("colour: always\n", "see config.example.yaml for every key"),
])
def test_a_config_key_typo_suggests_the_key(tmp_path, text, hint):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as err:
        load(env={}, config_path=p)
    assert err.value.message.startswith("unknown configuration key ") and err.value.hint == hint


def test_the_cli_shows_the_suggestion(cli, tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("progres: never\n")
    r = cli("--config", str(p), "list")
    assert (r.exit_code, r.stdout) == (7, "")
    assert r.stderr == (
        f"error: unknown configuration key 'progres' in {p}\n"
        "hint: did you mean 'progress'? see config.example.yaml for every key\n"
    )


def test_status_counts_name_replicas_with_nothing_loaded(cli, tmp_path, client):
    model = tmp_path / "m.pkl"
    model.write_bytes(b"\x80\x04w")
    cli("push", "lr", str(model), "--version", "v1", "--promote")
    handles = [client.registry.register_replica("lr", f"r{i}", {"state": "syncing", "alias": "latest"})
               for i in range(2)]
    handles.append(client.registry.register_replica("lr", "r9", {"state": "ready", "loaded": "v1"}))
    try:
        r = cli("status", "lr")
        assert r.stderr == "v1: 1, nothing loaded: 2\n"
        assert json.loads(cli("status", "lr", "-o", "json").stdout)["counts"] == {"-": 2, "v1": 1}  # the contract
    finally:
        for h in handles:
            h.close()


def test_bootstrap_silences_only_the_compat_editable_banner():
    """scripts/bootstrap keeps setuptools' compat editable mode (faster start-up) without its banner:
    the filter it sets hides that warning, as setuptools words it, and no other."""
    script = (REPO / "scripts" / "bootstrap").read_text()
    assert "--config-settings editable_mode=compat" in script
    setting = re.search(r'PYTHONWARNINGS="([^"]+)" \\\n\s+\.venv/bin/python -m pip install .*editable_mode=compat',
                        script)
    assert setting is not None
    code = (
        "import warnings\n"
        "class SetuptoolsDeprecationWarning(UserWarning): pass\n"
        "warnings.warn('Compat editable installs\\n!!\\n\\n' + '*' * 80, SetuptoolsDeprecationWarning)\n"
        "warnings.warn('another warning', SetuptoolsDeprecationWarning)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    r = subprocess.run([sys.executable, "-c", code], env={**env, "PYTHONWARNINGS": setting.group(1)},
                       capture_output=True, text=True, check=True)
    assert "Compat editable installs" not in r.stderr and "another warning" in r.stderr
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert "Compat editable installs" in r.stderr
