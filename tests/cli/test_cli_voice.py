"""One CLI voice: usage errors as error:/hint: lines, global options anywhere, bare `mdl` is the help,
examples in every command's help. The real binary, as a user runs it."""

import json
import re

import pytest

from mdl.cli.app import COMMANDS


def text(r):
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def test_bare_mdl_prints_the_help_and_exits_0(run_mdl):
    code, out, err = text(run_mdl())
    assert (code, err) == (0, "")
    assert out.startswith("Usage: mdl [OPTIONS] COMMAND [ARGS]...\n") and "Examples" not in out.splitlines()[0]


@pytest.mark.parametrize("argv, stderr", [
    (["hist", "lr"], "error: unknown command 'hist'\nhint: did you mean: mdl history, mdl list?\n"),
    (["--debug", "lsit"], "error: unknown command 'lsit'\nhint: did you mean: mdl list?\n"),
    (["frobnicate"], "error: unknown command 'frobnicate'\nhint: see the commands with: mdl -h\n"),
    (["promote"], "error: missing argument 'NAME'\nhint: usage: mdl promote [OPTIONS] {NAME} {VERSION} "
                  "(see: mdl promote -h)\n"),
    (["pull", "lr", "--no-such-option"], "error: no such option: --no-such-option\n"
                                         "hint: usage: mdl pull [OPTIONS] {NAME} [VERSION] (see: mdl pull -h)\n"),
    (["list", "a", "b"], "error: unexpected extra argument: b\nhint: usage: mdl list [OPTIONS] [NAME] "
                         "(see: mdl list -h)\n"),
    (["alias", "rm", "lr"], "error: missing argument 'ALIAS'\nhint: usage: mdl alias rm [OPTIONS] {NAME} {ALIAS} "
                            "(see: mdl alias rm -h)\n"),
])
def test_usage_errors_speak_in_mdls_voice(run_mdl, argv, stderr):
    assert text(run_mdl(*argv)) == (2, "", stderr)


def test_a_bare_command_group_prints_its_help(run_mdl):
    code, out, err = text(run_mdl("alias"))
    assert (code, err) == (0, "") and out.startswith("Usage: mdl alias [OPTIONS] COMMAND [ARGS]...")


def test_global_options_work_after_the_command(run_mdl, tmp_path):
    model = tmp_path / "m.pkl"
    model.write_bytes(b"\x80\x04x")
    other = f"sqlite://{tmp_path}/other.db"
    assert run_mdl("push", "lr", str(model), "--version", "v1", "--promote").returncode == 0
    # --registry after the command: an empty registry of its own (the model's aliases are not there)
    code, out, _ = text(run_mdl("list", "-o", "json", "--registry", other))
    assert code == 0 and json.loads(out)["models"] == [{"name": "lr", "aliases": {}, "versions": 1}]
    # -o before the command, --debug after it
    code, out, err = text(run_mdl("-o", "json", "list", "lr", "--debug"))
    assert code == 0 and json.loads(out)["aliases"] == {"latest": "v1"}
    assert text(run_mdl("list", "lr", "-q", "--context=nope"))[0] == 7  # --context reached the config


@pytest.mark.parametrize("command", sorted(set(COMMANDS) - {"ls"}))
def test_every_command_help_has_examples_and_one_metavar_style(run_mdl, command):
    code, out, err = text(run_mdl(command, "-h"))
    assert code == 0 and err == ""
    assert "\nExamples:\n" in out.replace("  Examples:", "Examples:"), out
    example_lines = out.split("Examples:")[1]
    assert f"mdl {command}" in example_lines
    # placeholders are upper-case words: no Typer <str> / <int range> mixed in
    assert not re.search(r"<[a-z ]+>", out), out


def test_quiet_prints_identifiers_only(cli, client, tmp_path):
    model = tmp_path / "m.pkl"
    model.write_bytes(b"\x80\x04one")
    assert cli("push", "lr", str(model), "--version", "v1", "--promote", "-q").stdout == "v1\n"
    model.write_bytes(b"\x80\x04two")
    assert cli("push", "lr", str(model), "--version", "v2", "-q").stdout == "v2\n"
    outcomes = [
        (["promote", "lr", "v2", "-q"], "v2\n"),
        (["promote", "lr", "v2", "--alias", "canary", "-q"], "v2\n"),
        (["rollback", "lr", "-q"], "v1\n"),
        (["alias", "rm", "lr", "canary", "-q"], ""),
        (["pull", "lr", "-d", str(tmp_path / "out"), "-q"], f"{tmp_path / 'out'}\n"),
        (["clean", "-q"], ""),
    ]
    for argv, stdout in outcomes:
        r = cli(*argv)
        assert (r.exit_code, r.stdout, r.stderr) == (0, stdout, ""), argv
    handle = client.register_replica("lr", "host-a-1", {"kind": "watch", "state": "ready", "loaded": "v1"})
    try:
        r = cli("status", "lr", "-q")
    finally:
        handle.close()
    assert (r.exit_code, r.stdout, r.stderr) == (0, "host-a-1\n", "")


def test_a_registry_that_does_not_answer_is_announced_after_a_second(run_mdl):
    """ZooKeeper down: a 'connecting to ...' note after ~1 s, then one error naming the operation."""
    import socket
    import time

    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    r = run_mdl("promote", "lr", "v1", env={"MDL_REGISTRY_URL": f"zk://127.0.0.1:{port}/mdl",
                                           "MDL_REGISTRY_TIMEOUT": "3"})
    code, out, err = text(r)
    lines = err.splitlines()
    assert code == 6 and out == "" and time.monotonic() - start < 20, err
    assert lines[0] == f"connecting to ZooKeeper at 127.0.0.1:{port} …", lines
    assert lines[1].startswith("error: promote lr/v1: registry unreachable: ") and lines[2].startswith("hint: ")
