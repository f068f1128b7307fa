"""The command line before Typer parses it: global options accepted anywhere (as kubectl does), the
command a line runs, and a suggestion for a mistyped one. Pure functions over ``sys.argv[1:]``."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

# global options (the app's callback) that take a value, and those that don't
GLOBAL_VALUED = frozenset({"--config", "--context", "--storage", "--registry"})
GLOBAL_FLAGS = frozenset({"--debug"})
# every command's output options: accepted before the command too (``mdl -o json list``)
OUTPUT_VALUED = frozenset({"-o", "--output"})
OUTPUT_FLAGS = frozenset({"--json"})
# words after which the rest of the line is another program's (like ``--``): ``mdl dev-cluster fs -ls /``
VERBATIM_AFTER = frozenset({("dev-cluster", "fs")})


def _key(arg: str) -> str:
    """``--context=prod`` -> ``--context``; ``-ojson`` -> ``-o``."""
    if arg.startswith("--"):
        return arg.split("=", 1)[0]
    if arg.startswith("-o") and len(arg) > 2:
        return "-o"
    return arg


def normalize(argv: Sequence[str], commands: Iterable[str]) -> list[str]:
    """``argv`` with global options moved before the command and output options after it.

    ``mdl list lr --context prod -o json`` and ``mdl --context prod -o json list lr`` then parse the
    same. Nothing after ``--`` moves, and a command Typer does not know is left for it to report.
    """
    known = set(commands)
    front: list[str] = []
    output: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):  # options before the command
        arg, key = args[i], _key(args[i])
        if key in GLOBAL_VALUED or key in GLOBAL_FLAGS:
            bucket = front
        elif key in OUTPUT_VALUED or key in OUTPUT_FLAGS:
            bucket = output
        else:
            break
        bucket.append(arg)
        if arg in GLOBAL_VALUED | OUTPUT_VALUED and i + 1 < len(args):  # its value is the next argument
            bucket.append(args[i + 1])
            i += 1
        i += 1
    if i == len(args) or args[i] not in known:
        return front + output + args[i:]  # no command to move options around: as it was
    command, tail = args[i], []
    i += 1
    while i < len(args):
        arg, key = args[i], _key(args[i])
        if arg == "--" or (command, arg) in VERBATIM_AFTER:
            break
        if key in GLOBAL_VALUED or key in GLOBAL_FLAGS:
            front.append(arg)
            if arg in GLOBAL_VALUED and i + 1 < len(args):
                front.append(args[i + 1])
                i += 1
        else:
            tail.append(arg)
        i += 1
    return front + [command] + tail + output + args[i:]


def command_of(argv: Sequence[str], commands: Iterable[str]) -> str | None:
    """The command a (normalized) argument list runs, if it names a known one after global options."""
    known = set(commands)
    it = iter(argv)
    for arg in it:
        if arg in GLOBAL_VALUED:
            next(it, None)
        elif arg in GLOBAL_FLAGS or _key(arg) in GLOBAL_VALUED:
            continue
        else:
            return arg if arg in known else None
    return None


def first_word(argv: Sequence[str]) -> str | None:
    """The first argument that is not a global option or its value: the command the user meant."""
    it = iter(argv)
    for arg in it:
        if arg in GLOBAL_VALUED:
            next(it, None)
        elif arg.startswith("-"):
            continue
        else:
            return arg
    return None


def suggest(word: str, commands: Sequence[str]) -> list[str]:
    """Commands ``word`` may have meant: those it begins (``hist`` -> history) before look-alikes."""
    prefixed = [c for c in commands if c.startswith(word)]
    close = difflib.get_close_matches(word, commands, n=3, cutoff=0.6)
    return list(dict.fromkeys(prefixed + close))[:3]
