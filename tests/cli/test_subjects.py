"""Wrong subject, wrong code (issue 15, items 6, 7 and alias removal): each error names the missing
thing and exits 3; push --alias moves the alias; mdl alias rm."""

from __future__ import annotations

import json

import pytest

from mdl.fleet import ReplicaRecord

NOT_FOUND, CONFLICT, UNAVAILABLE = 3, 4, 6


@pytest.fixture
def lr(cli, tmp_path):
    """Model lr with versions v1 (latest) and v2."""
    for v in ("v1", "v2"):
        p = tmp_path / v / "model.pkl"
        p.parent.mkdir()
        p.write_bytes(f"weights {v}".encode())
        assert cli("push", "lr", str(p), "--version", v, *(["--promote"] if v == "v1" else [])).exit_code == 0
    return tmp_path


@pytest.fixture
def mdl_alias(cli):
    """``mdl alias ...`` in-process."""
    return lambda *args: cli("alias", *args)


def error_lines(r) -> list[str]:
    return r.stderr.splitlines()


MODEL_MISSING = ["error: model 'nope' does not exist", "hint: see the models with: mdl list"]


@pytest.mark.parametrize("argv", [
    ["promote", "nope", "v1"],
    ["status", "nope"],
    ["endpoints", "nope"],
    ["history", "nope"],
    ["history", "nope", "-a", "latest"],
    ["rollback", "nope"],
    ["pull", "nope", "v1"],
])
def test_an_unknown_model_is_named_and_exits_3(cli, lr, argv):
    r = cli(*argv)
    assert (r.exit_code, r.stdout, error_lines(r)) == (NOT_FOUND, "", MODEL_MISSING)


def test_an_unknown_version_of_a_known_model_names_the_version(cli, lr):
    r = cli("promote", "lr", "v9")
    assert (r.exit_code, error_lines(r)) == (NOT_FOUND, [
        "error: version lr/v9 does not exist", "hint: see the versions with: mdl list lr"])


def test_rollback_of_an_alias_never_set_names_the_alias(cli, lr):
    r = cli("rollback", "lr", "-a", "canary")
    assert (r.exit_code, error_lines(r)) == (NOT_FOUND, [
        "error: alias 'canary' of lr is not set",
        "hint: point it at a version first: mdl promote lr VERSION --alias canary"])
    r = cli("rollback", "lr")  # set, but never moved since
    assert (r.exit_code, error_lines(r)) == (NOT_FOUND, [
        "error: lr:latest has no earlier version to roll back to", "hint: see the moves with: mdl history lr"])


def test_history_of_an_alias_never_set_exits_3(cli, lr):
    r = cli("history", "lr", "-a", "nope")
    assert (r.exit_code, r.stdout, error_lines(r)) == (NOT_FOUND, "", [
        "error: alias 'nope' of lr was never set", "hint: see the aliases with: mdl list lr"])


def test_an_existing_model_without_replicas_is_an_empty_fleet(cli, lr):
    assert cli("status", "lr", "-o", "json").exit_code == 0
    assert json.loads(cli("status", "lr", "-o", "json").stdout)["replicas"] == []
    r = cli("endpoints", "lr")
    assert (r.exit_code, r.stdout) == (0, "")


def test_an_unreachable_registry_names_the_users_operation(cli, lr):
    r = cli("promote", "lr", "v2", env={"MDL_REGISTRY_URL": "zk://127.0.0.1:1/mdl", "MDL_REGISTRY_TIMEOUT": "1"})
    assert (r.exit_code, error_lines(r)) == (UNAVAILABLE, [
        "error: promote lr/v2: registry unreachable: cannot connect to ZooKeeper at 127.0.0.1:1 within 1 s",
        "hint: check that the ZooKeeper ensemble is running and reachable (registry.url); "
        "registry.timeout sets how long mdl waits"])


def test_push_alias_moves_that_alias(cli, lr, tmp_path):
    p = tmp_path / "v3.pkl"
    p.write_bytes(b"weights v3")
    r = cli("push", "lr", str(p), "--version", "v3", "--alias", "canary")
    assert (r.exit_code, r.stdout) == (0, "v3\n")
    assert r.stderr.splitlines()[-1] == "lr:canary -> v3"
    aliases = json.loads(cli("list", "-o", "json").stdout)["models"][0]["aliases"]
    assert aliases == {"latest": "v1", "canary": "v3"}
    r = cli("push", "lr", "--help")
    assert "Also point this alias at the new version (implies --promote)." in " ".join(r.stdout.split())


def test_alias_rm_removes_it_and_records_it_in_the_history(cli, lr, mdl_alias):
    assert cli("promote", "lr", "v2", "-a", "canary").exit_code == 0
    r = mdl_alias("rm", "lr", "canary")
    assert (r.exit_code, r.stdout, r.stderr) == (0, "", "removed lr:canary (was v2)\n")
    aliases = json.loads(cli("list", "-o", "json").stdout)["models"][0]["aliases"]
    assert aliases == {"latest": "v1"}
    last = json.loads(cli("history", "lr", "-o", "json").stdout)["history"][-1]
    assert {k: last[k] for k in ("alias", "from", "to", "action")} == {
        "alias": "canary", "from": "v2", "to": None, "action": "remove"}
    table = cli("history", "lr", "-a", "canary").stdout.splitlines()
    assert table[-1].split()[-4:-1] == ["remove", "v2", "-"]
    # rollback undoes the removal
    r = cli("rollback", "lr", "-a", "canary")
    assert (r.exit_code, r.stderr) == (0, "lr:canary -> v2 (was unset)\n")


def test_alias_rm_json(cli, lr, mdl_alias):
    r = mdl_alias("rm", "lr", "latest", "-o", "json")
    assert r.exit_code == 0
    assert json.loads(r.stdout) == {
        "name": "lr", "alias": "latest", "previous": "v1", "version": None, "changed": True, "action": "remove"}


def test_alias_rm_of_an_unset_alias_or_unknown_model_exits_3(cli, lr, mdl_alias):
    r = mdl_alias("rm", "lr", "canary")
    assert (r.exit_code, error_lines(r)) == (NOT_FOUND, [
        "error: alias 'canary' of lr is not set", "hint: see the aliases with: mdl list lr"])
    r = mdl_alias("rm", "nope", "latest")
    assert (r.exit_code, error_lines(r)) == (NOT_FOUND, MODEL_MISSING)


def test_alias_rm_is_refused_while_replicas_follow_it_unless_forced(cli, lr, mdl_alias, client):
    record = ReplicaRecord(kind="watcher", alias="latest", desired="v1", loaded="v1", state="ready").to_dict()
    handle = client.register_replica("lr", "w1", record)
    try:
        r = mdl_alias("rm", "lr", "latest")
        assert (r.exit_code, error_lines(r)) == (CONFLICT, [
            "error: alias 'latest' of lr is followed by 1 live replica: w1",
            "hint: point it elsewhere (mdl promote lr VERSION --alias latest), stop those replicas, "
            "or remove it anyway with: mdl alias rm lr latest --force"])
        assert json.loads(cli("list", "-o", "json").stdout)["models"][0]["aliases"] == {"latest": "v1"}
        r = mdl_alias("rm", "lr", "latest", "--force")
        assert (r.exit_code, r.stderr) == (0, "removed lr:latest (was v1)\n")
    finally:
        handle.close()


def test_a_wait_for_the_registry_is_noted_after_about_a_second(backend_env):
    from mdl.client import Client
    from mdl.config import load
    from mdl.errors import Unavailable

    def attempt(timeout: str) -> tuple[list[str], str]:
        notes: list[str] = []
        env = {**backend_env, "MDL_REGISTRY_URL": "zk://127.0.0.1:1/mdl", "MDL_REGISTRY_TIMEOUT": timeout}
        with Client(load(env=env), notice=notes.append) as c, pytest.raises(Unavailable) as e:
            c.history("lr")
        return notes, e.value.message

    notes, message = attempt("2")
    assert notes == ["connecting to ZooKeeper at 127.0.0.1:1 …"]
    assert message == "history lr: registry unreachable: cannot connect to ZooKeeper at 127.0.0.1:1 within 2 s"
    assert attempt("0.5")[0] == []  # a wait shorter than the note's delay says nothing more
