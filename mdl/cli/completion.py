"""Shell completion: candidates from the configured registry within a deadline, and mdl's shell scripts.

The scripts ask the app in Typer's bash protocol (``_MDL_COMPLETE=complete_bash``: one value a line)
from all three shells, so each shell keeps mdl's order (versions newest first) and falls back to
file names only where mdl has no candidates of its own: a value the registry knows (a model, a
version, an alias) with no match, or a registry that is down or slow, completes to nothing.
"""

import os
from collections.abc import Callable, Iterable
from typing import Any

import typer

DEADLINE = 0.4  # seconds a TAB waits for the registry, then completes to nothing
NOTHING = ":none:"  # a value ending so: "no candidates, and no file names either" to the scripts
_SCRIPT_VAR = "_MDL_COMPLETE_SCRIPT"  # set by mdl's scripts (Typer's own don't know NOTHING)
SWAP_POLICIES = ("availability", "resource")

Report = Callable[[list[str]], None]


def within_deadline(query: Callable[[Report], None], timeout: float = DEADLINE) -> list[str]:
    """What ``query`` reported last (it may report a quick answer, then a better one) by ``timeout``.

    The query runs on a daemon thread: a registry that never answers is left behind, not waited for,
    and whatever it raises is no candidates.
    """
    import threading

    found: list[list[str]] = []

    def run() -> None:
        import logging

        logging.getLogger().addHandler(logging.NullHandler())  # no warning of a backend reaches the shell
        try:
            query(found.append)
        except Exception:
            pass

    worker = threading.Thread(target=run, name="mdl-complete", daemon=True)
    worker.start()
    worker.join(timeout)
    return list(found[-1]) if found else []


def _answer(values: Iterable[str], incomplete: str) -> list[str]:
    """The values starting with ``incomplete``, in order; for mdl's scripts NOTHING if none does
    (after ``incomplete``: Typer drops values that do not start with it)."""
    matching = [v for v in values if v.startswith(incomplete)]
    if not matching and os.environ.get(_SCRIPT_VAR):
        return [incomplete + NOTHING]
    return matching


def _client(ctx: typer.Context) -> Any:
    """A client for the registry and storage the command line names (its global options, if given
    before the command; else the environment and config file)."""
    from mdl.client import Client
    from mdl.config import load

    given = ctx.find_root().params
    flags = {"storage.url": given.get("storage"), "registry.url": given.get("registry")}
    return Client(load(flags, config_path=given.get("config"), context=given.get("context")))


def _model(ctx: typer.Context) -> str | None:
    """The model named earlier on the line: the command's first argument."""
    name = ctx.params.get("name")
    if isinstance(name, str) and name:
        return name
    # A line ending in an option that awaits its value (`mdl promote lr v1 --alias `) stops the
    # parser before it reads the arguments: find the first one in the words themselves.
    import shlex

    try:
        words = shlex.split(os.environ.get("COMP_WORDS", ""))[: int(os.environ.get("COMP_CWORD", "0"))]
    except ValueError:  # an unclosed quote
        return None
    valued = {o for p in ctx.command.params if not getattr(p, "is_flag", True) for o in p.opts}
    rest = iter(words[words.index(ctx.info_name) + 1 :] if ctx.info_name in words else [])
    for word in rest:
        if word in valued:
            next(rest, None)
        elif not word.startswith("-"):
            return word
    return None


def complete_model(ctx: typer.Context, incomplete: str) -> list[str]:
    """Model names, from storage and the registry."""

    def query(report: Report) -> None:
        with _client(ctx) as client:
            report([m.name for m in client.list_models()])

    return _answer(within_deadline(query), incomplete)


def complete_version(ctx: typer.Context, incomplete: str) -> list[str]:
    """The versions of the model given earlier on the line, newest first."""
    name = _model(ctx)
    if name is None:
        return _answer([], incomplete)

    def query(report: Report) -> None:
        with _client(ctx) as client:
            report(sorted(client.stored_versions(name), reverse=True))  # ids alone: timestamps sort by age
            report([v.version for v in client.list_versions(name)])  # by the manifests' creation times

    return _answer(within_deadline(query), incomplete)


def complete_alias(ctx: typer.Context, incomplete: str) -> list[str]:
    """The aliases of the model given earlier on the line, and ``latest`` (the default) always."""
    from mdl.names import DEFAULT_ALIAS

    name = _model(ctx)
    if name is None:
        return _answer([DEFAULT_ALIAS], incomplete)

    def query(report: Report) -> None:
        report([DEFAULT_ALIAS])
        with _client(ctx) as client:
            report(sorted(set(client.pointer(name).aliases) | {DEFAULT_ALIAS}))

    return _answer(within_deadline(query), incomplete)


def complete_context(ctx: typer.Context, incomplete: str) -> list[str]:
    """The contexts the config file defines (--config if given before, else $MDL_CONFIG or the default)."""

    def query(report: Report) -> None:
        from pathlib import Path

        import yaml

        from mdl.config import config_home

        explicit = ctx.find_root().params.get("config") or os.environ.get("MDL_CONFIG")
        path = Path(explicit) if explicit else config_home() / "config.yaml"
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        contexts = doc.get("contexts") if isinstance(doc, dict) else None
        report(sorted(str(c) for c in contexts) if isinstance(contexts, dict) else [])

    return _answer(within_deadline(query), incomplete)


def complete_format(incomplete: str) -> list[str]:
    """The model formats a manifest records."""
    from mdl.manifest import FORMATS

    return _answer(FORMATS, incomplete)


def complete_output(incomplete: str) -> list[str]:
    """The output formats of ``-o``."""
    from mdl.cli.common import OUTPUT_FORMATS

    return _answer(OUTPUT_FORMATS, incomplete)


def complete_endpoints_output(incomplete: str) -> list[str]:
    """The output formats of ``mdl endpoints -o`` (the common ones, then the balancers')."""
    from mdl.cli.endpoints import FORMATS

    return _answer(FORMATS, incomplete)


def complete_swap(incomplete: str) -> list[str]:
    """The swap policies of ``mdl serve --swap``."""
    return _answer(SWAP_POLICIES, incomplete)


_BASH = """\
_mdl_completion() {
    # the line itself, not COMP_WORDS: those are split at ':' and '=' too (sqlite:///x, --alias=x)
    local line=${COMP_LINE:0:COMP_POINT}
    local -a words found
    read -ra words <<<"$line"
    local cword=${#words[@]}
    [[ $line == *[[:space:]] ]] || cword=$((cword - 1))
    mapfile -t found < <(env COMP_WORDS="$line" COMP_CWORD="$cword" \\
        _MDL_COMPLETE=complete_bash %(script_var)s=1 "$1" 2>/dev/null)
    COMPREPLY=()
    if [[ -z ${found[*]} ]]; then
        compopt -o default  # mdl knows no values here (a path, say): file names
    elif [[ ${found[0]} != *"%(nothing)s" ]]; then
        COMPREPLY=("${found[@]}")
    fi
    return 0
}

complete -o nosort -F _mdl_completion mdl
"""

_ZSH = """\
#compdef mdl

_mdl_completion() {
  local -a found
  found=(${(f)"$(env COMP_WORDS="${words[1,CURRENT]}" COMP_CWORD=$((CURRENT - 1)) \\
    _MDL_COMPLETE=complete_bash %(script_var)s=1 mdl 2>/dev/null)"})
  if (( ${#found} == 0 )); then
    _files  # mdl knows no values here (a path, say): file names
  elif [[ ${found[1]} != *"%(nothing)s" ]]; then
    compadd -V mdl -- "${found[@]}"  # -V: in mdl's order (versions newest first)
  fi
}

compdef _mdl_completion mdl
"""

_FISH = """\
function __mdl_complete
    set -l tokens (commandline -opc)
    set -l current (commandline -ct)
    set -l found (env COMP_WORDS="$tokens $current" COMP_CWORD=(count $tokens) \\
        _MDL_COMPLETE=complete_bash %(script_var)s=1 mdl 2>/dev/null)
    if not string length -q -- $found
        __fish_complete_path $current  # mdl knows no values here (a path, say): file names
    else if not string match -q -- "*%(nothing)s" $found[1]
        printf '%%s\\n' $found
    end
end

complete --command mdl --no-files --keep-order --arguments '(__mdl_complete)'
"""

SCRIPTS = {"bash": _BASH, "zsh": _ZSH, "fish": _FISH}


def script(shell: str) -> str | None:
    """mdl's completion script for ``shell`` (what ``_MDL_COMPLETE=source_SHELL mdl`` prints), if it has one."""
    template = SCRIPTS.get(shell)
    return None if template is None else template % {"script_var": _SCRIPT_VAR, "nothing": NOTHING}
