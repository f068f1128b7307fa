"""The command line before Typer: global options anywhere, output options before the command, the
command a line runs, suggestions for a mistyped one."""

import pytest

from mdl.cli.app import COMMANDS
from mdl.cli.argv import command_of, first_word, normalize, suggest


@pytest.mark.parametrize("argv, expected", [
    (["list", "lr"], ["list", "lr"]),
    (["list", "lr", "--debug"], ["--debug", "list", "lr"]),
    (["list", "lr", "--context", "prod", "-q"], ["--context", "prod", "list", "lr", "-q"]),
    (["list", "--context=prod", "lr"], ["--context=prod", "list", "lr"]),
    (["promote", "lr", "v2", "--registry", "zk://h:2181/m", "--storage", "webhdfs://nn:9870"],
     ["--registry", "zk://h:2181/m", "--storage", "webhdfs://nn:9870", "promote", "lr", "v2"]),
    (["-o", "json", "list"], ["list", "-o", "json"]),
    (["--json", "--debug", "status", "lr"], ["--debug", "status", "lr", "--json"]),
    (["-ojson", "list", "lr"], ["list", "lr", "-ojson"]),
    (["--output=wide", "alias", "rm", "lr", "x"], ["alias", "rm", "lr", "x", "--output=wide"]),
    # nothing after `--` moves; output options go before it
    (["-o", "json", "watch", "lr", "--", "--debug"], ["watch", "lr", "-o", "json", "--", "--debug"]),
    # what follows dev-cluster's `fs` is FsShell's; an unknown command is left for Typer to report
    (["dev-cluster", "up", "--debug"], ["--debug", "dev-cluster", "up"]),
    (["dev-cluster", "fs", "-ls", "--debug"], ["dev-cluster", "fs", "-ls", "--debug"]),
    (["lsit", "--debug"], ["lsit", "--debug"]),
    ([], []),
    (["--debug"], ["--debug"]),
])
def test_normalize(argv, expected):
    assert normalize(argv, COMMANDS) == expected


def test_a_normalized_line_names_its_command():
    assert command_of(normalize(["list", "--context", "prod"], COMMANDS), COMMANDS) == "list"
    assert command_of(["--storage", "list"], COMMANDS) is None  # "list" is the option's value
    assert first_word(["--context", "prod", "--debug", "hist", "lr"]) == "hist"
    assert first_word(["--debug"]) is None


@pytest.mark.parametrize("word, expected", [
    ("hist", ["history"]),  # a prefix first: not "list"
    ("lsit", ["list"]),
    ("promot", ["promote"]),
    ("rolback", ["rollback"]),
    ("xyz", []),
])
def test_suggest_prefers_what_the_word_begins(word, expected):
    visible = [c for c in COMMANDS if c != "ls"]
    assert suggest(word, visible)[: len(expected) or None] == expected
