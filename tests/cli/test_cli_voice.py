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
