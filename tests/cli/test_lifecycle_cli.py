"""mdl rm, pin, unpin and gc, and the pins and deletions history, list and show report: exact output."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

import mdl.client
import mdl.publish

from .test_tables import on_terminal, piped

NO_RULE = "no retention rule for lr: set retention.keep_last or retention.keep_days, or pass --keep-last/--keep-days\n"
NO_V9 = "error: version lr/v9 does not exist\nhint: see the versions with: mdl list lr\n"
NOW = datetime.now(timezone.utc)
CREATED = {f"v{i}": (NOW - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
           for i, days in ((1, 40), (2, 30), (3, 20), (4, 10), (5, 1))}


def shown(version: str) -> str:
    """A creation time as a table shows it."""
    return CREATED[version][:19].replace("T", " ") + "Z"


@pytest.fixture
def lr(cli, tmp_path, monkeypatch):
    """lr/v1..v5 of 100..500 bytes, created 40, 30, 20, 10 and 1 days ago; latest moved v2 -> v4,
    so v2 is in latest's rollback window."""
    monkeypatch.setattr(mdl.client, "creator", lambda: "ci@build")
    for i in range(1, 6):
        v = f"v{i}"
        monkeypatch.setattr(mdl.publish, "now_iso", lambda v=v: CREATED[v])
        src = tmp_path / f"{v}.pkl"
        src.write_bytes(b"w" * 100 * i)
        assert cli("push", "lr", str(src), "--version", v).exit_code == 0
    assert cli("promote", "lr", "v2").exit_code == 0
    assert cli("promote", "lr", "v4").exit_code == 0


def versions(cli) -> list[str]:
    return cli("list", "lr", "-q").stdout.split()


# -- rm -------------------------------------------------------------------------------------------


def test_rm_prints_the_deleted_version_and_a_note(cli, lr):
    r = cli("rm", "lr", "v3")
    assert (r.exit_code, r.stdout, r.stderr) == (0, "v3\n", "deleted lr/v3 (300 B)\n")
    assert versions(cli) == ["v5", "v4", "v2", "v1"]


def test_rm_several_versions_and_quiet(cli, lr):
    r = cli("rm", "lr", "v1", "v3", "-q")
    assert (r.exit_code, r.stdout, r.stderr) == (0, "v1\nv3\n", "")
    assert versions(cli) == ["v5", "v4", "v2"]


def test_rm_json(cli, lr):
    r = cli("rm", "lr", "v3", "-o", "json")
    assert r.exit_code == 0 and r.stderr == ""
    assert json.loads(r.stdout) == {
        "name": "lr", "changed": True, "deleted": [{"name": "lr", "version": "v3", "bytes": 300, "trash": False}]}


@pytest.mark.parametrize("version, stderr", [
    ("v4", "error: cannot delete lr/v4: aliased: latest\n"
           "hint: point its aliases at another version first: mdl promote lr OTHER_VERSION [--alias ALIAS]\n"),
    ("v2", "error: cannot delete lr/v2: rollback window of latest\n"
           "hint: delete it anyway with: mdl rm lr v2 --force\n"),
])
def test_rm_refuses_aliased_and_rollback_window_versions(cli, lr, version, stderr):
    r = cli("rm", "lr", version)
    assert (r.exit_code, r.stdout, r.stderr) == (4, "", stderr)
    assert version in versions(cli)


def test_rm_refuses_a_pinned_version_even_with_force(cli, lr):
    assert cli("pin", "lr", "v3").exit_code == 0
    for extra in ([], ["--force"]):
        r = cli("rm", "lr", "v3", *extra)
        assert (r.exit_code, r.stdout, r.stderr) == (
            4, "", "error: cannot delete lr/v3: pinned\nhint: unpin it first: mdl unpin lr v3\n")
    r = cli("rm", "lr", "v4", "--force")
    assert r.exit_code == 4 and r.stderr.startswith("error: cannot delete lr/v4: aliased: latest\n")
    assert "v3" in versions(cli) and "v4" in versions(cli)


def test_rm_refuses_a_version_a_live_replica_uses_unless_forced(cli, client, lr):
    handle = client.register_replica("lr", "host-a-1", {"kind": "watch", "state": "ready", "loaded": "v1"})
    try:
        r = cli("rm", "lr", "v1")
        assert (r.exit_code, r.stderr) == (
            4, "error: cannot delete lr/v1: in use by host-a-1\nhint: delete it anyway with: mdl rm lr v1 --force\n")
        r = cli("rm", "lr", "v1", "--force")
        assert (r.exit_code, r.stdout, r.stderr) == (0, "v1\n", "deleted lr/v1 (100 B)\n")
    finally:
        handle.close()


def test_rm_force_deletes_a_version_in_a_rollback_window(cli, lr):
    r = cli("rm", "lr", "v2", "--force")
    assert (r.exit_code, r.stdout, r.stderr) == (0, "v2\n", "deleted lr/v2 (200 B)\n")


def test_rm_checks_every_version_before_deleting_any(cli, lr):
    r = cli("rm", "lr", "v1", "v4")
    assert r.exit_code == 4 and r.stdout == "" and r.stderr.startswith("error: cannot delete lr/v4: aliased")
    r = cli("rm", "lr", "v1", "v9")
    assert (r.exit_code, r.stderr) == (3, NO_V9)
    assert versions(cli) == ["v5", "v4", "v3", "v2", "v1"]


def test_rm_unknown_model(cli, lr):
    r = cli("rm", "nope", "v1")
    assert (r.exit_code, r.stderr) == (3, "error: model 'nope' does not exist\nhint: see the models with: mdl list\n")


def test_rm_trash_on_a_local_storage_is_a_usage_error_that_touches_nothing(cli, client, lr):
    r = cli("rm", "lr", "v3", "--trash")
    url = client.config["storage.url"]
    assert (r.exit_code, r.stdout, r.stderr) == (
        2, "", f"error: --trash is for HDFS: {url} has no trash\nhint: delete without --trash\n")
    assert "v3" in versions(cli) and client.registry.lifecycle("lr").tombstones == {}
    assert client.storage.list_hidden("lr") == []


def test_rm_help_says_what_force_overrides(cli):
    out = " ".join(cli("rm", "-h").stdout.split())
    assert "--force Delete even a version a live replica has loaded or is downloading, or one in an alias's " \
           "rollback window. Never an aliased or a pinned version." in out
    assert "mdl rm [OPTIONS] {NAME} {VERSION...}" in out


# -- pin / unpin ----------------------------------------------------------------------------------


def test_pin_and_unpin(cli, lr):
    assert (cli("pin", "lr", "v3").stderr, cli("pin", "lr", "v3").stderr) == (
        "pinned lr/v3\n", "unchanged: lr/v3 is already pinned\n")
    assert json.loads(cli("pin", "lr", "v3", "-o", "json").stdout) == {
        "name": "lr", "version": "v3", "pinned": True, "changed": False}
    r = cli("unpin", "lr", "v3")
    assert (r.exit_code, r.stdout, r.stderr) == (0, "", "unpinned lr/v3\n")
    assert cli("unpin", "lr", "v3").stderr == "unchanged: lr/v3 is not pinned\n"
    assert json.loads(cli("unpin", "lr", "v3", "--json").stdout) == {
        "name": "lr", "version": "v3", "pinned": False, "changed": False}


@pytest.mark.parametrize("command", ["pin", "unpin"])
def test_pin_and_unpin_an_unknown_version(cli, lr, command):
    r = cli(command, "lr", "v9")
    assert (r.exit_code, r.stderr) == (3, NO_V9)


def test_list_and_show_say_pinned(cli, lr):
    cli("pin", "lr", "v4")
    cli("pin", "lr", "v3")
    assert cli("list", "lr").stdout.splitlines()[1:4] == [
        f"v5\t{shown('v5')}\t500 B\t1\tpickle\t-",
        f"v4\t{shown('v4')}\t400 B\t1\tpickle\tlatest (pinned)",
        f"v3\t{shown('v3')}\t300 B\t1\tpickle\t(pinned)",
    ]
    doc = json.loads(cli("list", "lr", "-o", "json").stdout)
    assert [(v["version"], v["pinned"]) for v in doc["versions"]] == [
        ("v5", False), ("v4", True), ("v3", True), ("v2", False), ("v1", False)]
    assert "Pinned:    yes\n" in cli("show", "lr", "v3").stdout
    assert "Pinned:    no\n" in cli("show", "lr", "v5").stdout
    assert json.loads(cli("show", "lr", "v3", "--json").stdout)["pinned"] is True


# -- gc -------------------------------------------------------------------------------------------


HEADER = "VERSION\tACTION\tSIZE\tCREATED\tWHY\n"


def test_gc_without_yes_prints_the_plan_and_deletes_nothing(cli, lr):
    cli("pin", "lr", "v3")
    r = cli("gc", "lr", "--keep-last", "1")
    assert r.exit_code == 0
    assert r.stdout == HEADER + (
        f"v5\tkeep\t500 B\t{shown('v5')}\tamong the newest 1\n"
        f"v4\tkeep\t400 B\t{shown('v4')}\taliased: latest\n"
        f"v3\tkeep\t300 B\t{shown('v3')}\tpinned\n"
        f"v2\tkeep\t200 B\t{shown('v2')}\trollback window of latest\n"
        f"v1\tdelete\t100 B\t{shown('v1')}\tbeyond the newest 1\n"
    )
    assert r.stderr == "would delete 1 version of lr, 100 B; run again with --yes to delete\n"
    assert versions(cli) == ["v5", "v4", "v3", "v2", "v1"]


def test_gc_names_every_reason_and_wide_adds_bytes(cli, lr):
    r = cli("gc", "lr", "--keep-last", "3", "--keep-days", "15", "--rollback-window", "0", "-o", "wide")
    assert r.stdout == (
        "VERSION\tACTION\tSIZE\tCREATED\tWHY\tBYTES\n"
        f"v5\tkeep\t500 B\t{shown('v5')}\tamong the newest 3, younger than 15 days\t500\n"
        f"v4\tkeep\t400 B\t{shown('v4')}\taliased: latest, among the newest 3, younger than 15 days\t400\n"
        f"v3\tkeep\t300 B\t{shown('v3')}\tamong the newest 3\t300\n"
        f"v2\tdelete\t200 B\t{shown('v2')}\tbeyond the newest 3, older than 15 days\t200\n"
        f"v1\tdelete\t100 B\t{shown('v1')}\tbeyond the newest 3, older than 15 days\t100\n"
    )
    assert r.stderr == "would delete 2 versions of lr, 300 B; run again with --yes to delete\n"


def test_gc_yes_deletes_and_reports(cli, lr):
    r = cli("gc", "lr", "--keep-last", "2", "--yes")
    assert r.exit_code == 0
    assert r.stdout == HEADER + (
        f"v5\tkeep\t500 B\t{shown('v5')}\tamong the newest 2\n"
        f"v4\tkeep\t400 B\t{shown('v4')}\taliased: latest, among the newest 2\n"
        f"v3\tdeleted\t300 B\t{shown('v3')}\tbeyond the newest 2\n"
        f"v2\tkeep\t200 B\t{shown('v2')}\trollback window of latest\n"
        f"v1\tdeleted\t100 B\t{shown('v1')}\tbeyond the newest 2\n"
    )
    assert r.stderr == "deleted 2 versions of lr, 400 B\n"
    assert versions(cli) == ["v5", "v4", "v2"]
    again = cli("gc", "lr", "--keep-last", "2", "--yes", "-q")
    assert (again.exit_code, again.stdout, again.stderr) == (0, "", "nothing to delete in lr: keeping 3 versions\n")


def test_gc_quiet_prints_the_condemned_versions(cli, lr):
    assert cli("gc", "lr", "--keep-last", "2", "-q").stdout == "v3\nv1\n"


def test_gc_finishes_an_interrupted_delete(cli, client, lr):
    """A delete killed after its tombstone: the plan says so, gc --yes finishes it."""
    reg = client.registry
    lc = reg.lifecycle("lr")
    reg.set_lifecycle(lc._replace(tombstones={"v1": {"who": "ci@build", "at": CREATED["v5"]}}), lc.revision, None,
                      {"who": "ci@build", "action": "delete", "version": "v1"})
    r = cli("gc", "lr")
    assert r.stdout.splitlines()[-1] == f"v1\tdelete\t100 B\t{shown('v1')}\tdeletion in progress"
    assert r.stderr == NO_RULE + "would delete 1 version of lr, 100 B; run again with --yes to delete\n"
    r = cli("gc", "lr", "--yes")
    assert r.exit_code == 0
    assert r.stderr == NO_RULE + "finished 1 interrupted delete of lr: v1\n"
    assert versions(cli) == ["v5", "v4", "v3", "v2"] and reg.lifecycle("lr").tombstones == {}


def test_gc_without_a_rule_keeps_everything_and_says_how_to_set_one(cli, lr):
    r = cli("gc", "lr", "--grace", "0")
    assert r.exit_code == 0 and r.stderr == NO_RULE
    assert [line.split("\t")[1] for line in r.stdout.splitlines()[1:]] == ["keep"] * 5
    assert r.stdout.splitlines()[1] == f"v5\tkeep\t500 B\t{shown('v5')}\tno retention rule"


def test_gc_takes_the_rules_from_the_config_and_the_flags_override_them(cli, lr):
    env = {"MDL_RETENTION_KEEP_LAST": "4", "MDL_RETENTION_MODELS": '{"lr": {"keep_last": 3}}'}
    assert cli("gc", "lr", "-q", env=env).stdout == "v1\n"  # per model: 3 (v2 is in the rollback window)
    assert cli("gc", "lr", "-q", "--keep-last", "2", env=env).stdout == "v3\nv1\n"
    doc = json.loads(cli("gc", "lr", "--json", "--rollback-window", "0", env=env).stdout)
    assert doc["rules"] == {"keep_last": 3, "keep_days": None, "grace": 3600.0, "rollback_window": 0}


def test_gc_json_is_the_result_of_one_model(cli, lr):
    doc = json.loads(cli("gc", "lr", "--keep-last", "4", "-o", "json").stdout)
    assert doc == {
        "name": "lr",
        "rules": {"keep_last": 4, "keep_days": None, "grace": 3600.0, "rollback_window": 3},
        "delete": [{"version": "v1", "bytes": 100, "reasons": ["beyond the newest 4"]}],
        "keep": [
            {"version": "v5", "reasons": ["among the newest 4"]},
            {"version": "v4", "reasons": ["aliased: latest", "among the newest 4"]},
            {"version": "v3", "reasons": ["among the newest 4"]},
            {"version": "v2", "reasons": ["rollback window of latest", "among the newest 4"]},
        ],
        "bytes_freed": 100,
        "plan_only": True,
        "changed": False,
        "finished": [],
        "deleted": [],
        "skipped": [],
        "staging_removed": [],
    }
    done = json.loads(cli("gc", "lr", "--keep-last", "4", "--yes", "-o", "json").stdout)
    assert (done["plan_only"], done["changed"]) == (False, True)
    assert done["deleted"] == [{"name": "lr", "version": "v1", "bytes": 100, "trash": False}]


def test_gc_all_covers_every_model(cli, lr, tmp_path):
    src = tmp_path / "bert.bin"
    src.write_bytes(b"b" * 10)
    assert cli("push", "bert", str(src), "--version", "b1").exit_code == 0
    r = cli("gc", "--all", "--keep-last", "4")
    assert r.stdout.splitlines()[0] == "MODEL\t" + HEADER.rstrip("\n")
    assert [line.split("\t")[:3] for line in r.stdout.splitlines()[1:]] == [
        ["bert", "b1", "keep"], ["lr", "v5", "keep"], ["lr", "v4", "keep"], ["lr", "v3", "keep"],
        ["lr", "v2", "keep"], ["lr", "v1", "delete"]]
    assert r.stderr == (
        "nothing to delete in bert: keeping 1 version\n"
        "would delete 1 version of lr, 100 B; run again with --yes to delete\n"
    )
    doc = json.loads(cli("gc", "--all", "--keep-last", "4", "--json").stdout)
    assert [m["name"] for m in doc["models"]] == ["bert", "lr"] and doc["models"][1]["bytes_freed"] == 100


@pytest.mark.parametrize("argv, error", [
    (["--keep-last", "0"], "invalid value for '--keep-last': 0 is not in the range 1<=x<=1000000"),
    (["--keep-days", "-1"], "invalid value for '--keep-days': -1.0 is not in the range 0<=x<=36500"),
    (["--keep-days", "nan"], "invalid value for '--keep-days': nan is not a finite number"),
    (["--grace", "inf"], "invalid value for '--grace': inf is not in the range 0<=x<=31536000"),
    (["--rollback-window", "-1"], "invalid value for '--rollback-window': -1 is not in the range 0<=x<=1000"),
])
def test_gc_validates_its_flags_like_the_config(cli, lr, argv, error):
    r = cli("gc", "lr", *argv)
    assert (r.exit_code, r.stdout, r.stderr.splitlines()[0]) == (2, "", f"error: {error}")


@pytest.mark.parametrize("argv, error", [
    ([], "error: give either a model NAME or --all\n"),
    (["lr", "--all"], "error: give a model NAME or --all, not both\n"),
])
def test_gc_needs_a_name_or_all(cli, lr, argv, error):
    r = cli("gc", *argv)
    assert (r.exit_code, r.stderr) == (2, error + "hint: e.g. mdl gc lr --keep-last 10, or mdl gc --all\n")


def test_gc_trash_on_a_local_storage_is_refused_before_anything(cli, client, lr):
    r = cli("gc", "lr", "--keep-last", "1", "--yes", "--trash")
    assert r.exit_code == 2 and r.stderr.startswith("error: --trash is for HDFS: ")
    assert versions(cli) == ["v5", "v4", "v3", "v2", "v1"]


# -- history, and what a person sees ---------------------------------------------------------------


def test_history_shows_pins_and_deletions(cli, lr):
    cli("pin", "lr", "v3")
    cli("unpin", "lr", "v3")
    cli("rm", "lr", "v2", "--force")
    cli("gc", "lr", "--keep-last", "2", "--yes")
    lines = cli("history", "lr").stdout.splitlines()
    when = [line.split("\t")[1] for line in lines[1:]]
    rule = "keep_last=2, grace=1h, rollback_window=3"
    assert lines == [
        "SEQ\tWHEN\tALIAS\tACTION\tFROM\tTO\tWHO",
        f"1\t{when[0]}\tlatest\tpromote\t-\tv2\tci@build",
        f"2\t{when[1]}\tlatest\tpromote\tv2\tv4\tci@build",
        f"3\t{when[2]}\t-\tpin\t-\tv3\tci@build",
        f"4\t{when[3]}\t-\tunpin\tv3\t-\tci@build",
        f"5\t{when[4]}\t-\tdelete\tv2\t-\tci@build",
        f"6\t{when[5]}\t-\tdelete ({rule})\tv3\t-\tci@build",
        f"7\t{when[6]}\t-\tdelete ({rule})\tv1\t-\tci@build",
    ]
    doc = json.loads(cli("history", "lr", "-o", "json").stdout)["history"]
    assert doc[-1]["action"] == "delete" and doc[-1]["version"] == "v1" and doc[-1]["rule"] == rule


def test_gc_plan_on_a_terminal_and_piped_through_the_real_binary(lr, backend_env):
    """On a terminal the plan is an aligned table with the summary below it; piped, stdout is the table only."""
    code, screen = on_terminal(backend_env, "gc", "lr", "--keep-last", "4", columns=100)
    assert code == 0
    rows = [
        f"v5        keep     500 B   {shown('v5')}   among the newest 4",
        f"v4        keep     400 B   {shown('v4')}   aliased: latest, among the newest 4",
        f"v3        keep     300 B   {shown('v3')}   among the newest 4",
        f"v2        keep     200 B   {shown('v2')}   rollback window of latest, among the newest 4",
        f"v1        delete   100 B   {shown('v1')}   beyond the newest 4",
    ]
    assert screen.splitlines() == [
        "VERSION   ACTION   SIZE    CREATED                WHY",
        "\u2500" * max(len(row) for row in rows),
        *rows,
        "would delete 1 version of lr, 100 B; run again with --yes to delete",
    ]
    r = piped(backend_env, "gc", "lr", "--keep-last", "4")
    assert r.returncode == 0 and r.stdout.startswith(HEADER) and len(r.stdout.splitlines()) == 6
    assert r.stderr == "would delete 1 version of lr, 100 B; run again with --yes to delete\n"
