"""mdl promote: point an alias at a version (compare-and-set, recorded in the history)."""

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from mdl.cli.args import NameArg, version_argument
from mdl.cli.common import (
    AliasOpt,
    JsonOpt,
    OutputOpt,
    QuietOpt,
    command,
    emit_json,
    emit_lines,
    finite,
    info,
    output_format,
    state,
)
from mdl.errors import ExitCode, InvalidInput, MdlError, NotFound, RolloutFailed, Timeout

if TYPE_CHECKING:
    from mdl.client import Client, MoveResult
    from mdl.fleet import RolloutProgress


class Interrupted(MdlError):
    """Ctrl-C while waiting: exit 130, saying where the alias was left."""

    exit_code = ExitCode.INTERRUPTED


def report_move(move: "MoveResult", fmt: str, quiet: bool = False) -> None:
    """Shared by promote, rollback and alias rm: JSON on stdout (``fmt`` json), one human line on
    stderr, or (``quiet``) the version the alias points at now on stdout (nothing once removed)."""
    if fmt == "json":
        emit_json(move.to_dict())
    elif quiet:
        emit_lines([move.version] if move.version else [])
    elif move.action == "remove":
        info(f"removed {move.name}:{move.alias} (was {move.previous})")
    elif move.changed:
        info(f"{move.name}:{move.alias} -> {move.version} (was {move.previous or 'unset'})")
    else:
        info(f"unchanged: {move.name}:{move.alias} already points at {move.version}")


@command
def promote(
    ctx: typer.Context,
    name: NameArg,
    version: Annotated[str, version_argument("The version the alias should point at.")],
    alias: AliasOpt = "latest",
    expect: Annotated[
        str | None,
        typer.Option(
            "--expect",
            metavar="VERSION",
            help="Move only if the alias now points at this version (else exit 4).",
            show_default=False,
        ),
    ] = None,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="Return once every live replica following the alias reports the version ready, "
            "showing 'n of m ready' on stderr. Exit 5 on timeout, 1 if a replica failed to load it, "
            "3 if no replica follows the alias (give --min-ready 0 to accept that).",
        ),
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            metavar="SECONDS",
            min=0,
            callback=finite,
            help="Seconds --wait waits (default: 300).",
            show_default=False,
        ),
    ] = None,
    min_ready: Annotated[
        int | None,
        typer.Option(
            "--min-ready",
            metavar="N",
            min=0,
            help="With --wait: enough when this many replicas are ready (0: do not require any).",
            show_default=False,
        ),
    ] = None,
    rollback_on_failure: Annotated[
        bool,
        typer.Option(
            "--rollback-on-failure", help="With --wait: move the alias back if a replica fails to load the version."
        ),
    ] = False,
    output: OutputOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Point an alias (default: latest) at a complete version.

    With --wait every outcome ends saying where the alias points now.
    """
    from mdl.names import validate_version

    if not wait:  # options that only mean something with --wait are an error without it, not ignored
        for flag, given in (
            ("--min-ready", min_ready is not None),
            ("--rollback-on-failure", rollback_on_failure),
            ("--timeout", timeout is not None),
        ):
            if given:
                raise InvalidInput(f"{flag} needs --wait", hint=f"add --wait, or leave out {flag}")
    if expect is not None:
        validate_version(expect)
    fmt = output_format(ctx, output, as_json)
    client = state(ctx).client
    move = client.promote(name, version, alias=alias, expect=expect)
    report_move(move, fmt, quiet)
    if wait:
        _wait(client, move, 300.0 if timeout is None else timeout, min_ready, rollback_on_failure, quiet)


class _ProgressLine:
    """ "n of m ready" on stderr: one line rewritten in place on a terminal, else a line per change."""

    def __init__(self, name: str, version: str, alias: str, min_ready: int | None, silent: bool = False) -> None:
        self.what, self.alias, self.min_ready, self.silent = f"{name}/{version}", alias, min_ready, silent
        self.live = sys.stderr.isatty() and not silent
        self.last: RolloutProgress | None = None

    def text(self) -> str:
        from mdl.fleet import plural

        p = self.last
        if p is None or (p.following == 0 and self.min_ready is None):
            return f"no replica follows {self.alias} yet"
        text = f"{p.ready} of {plural(p.needed, 'replica')} ready on {self.what}"
        return text if self.min_ready is None else f"{text} ({p.following} following {self.alias})"

    def __call__(self, progress: "RolloutProgress") -> None:
        self.last = progress
        if self.silent:
            return
        if self.live:
            sys.stderr.write(f"\r\x1b[K{self.text()}")
            sys.stderr.flush()
        else:
            info(f"waiting: {self.text()}")

    def close(self) -> None:
        if self.live and self.last is not None:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def _wait(
    client: "Client", move: "MoveResult", timeout: float, min_ready: int | None, roll_back: bool, quiet: bool
) -> None:
    """Wait for the replicas following the alias; every outcome says where the alias points now, and
    no hint suggests what already happened (``quiet``: no progress, and success says nothing)."""
    from mdl.fleet import Fleet, plural

    name, alias, version = move.name, move.alias, str(move.version)
    progress = _ProgressLine(name, version, alias, min_ready, silent=quiet)
    undo = f"undo the promotion with: mdl rollback {name} --alias {alias}"
    try:
        try:
            ready = Fleet(client).wait_for_rollout(
                name, version, alias=alias, timeout=timeout, min_ready=min_ready, on_progress=progress
            )
        finally:
            progress.close()
    except RolloutFailed as exc:
        raise _after_failure(client, move, exc, roll_back) from None
    except Timeout as exc:
        hint = f"{exc.hint}; {undo}" if move.changed and move.previous else exc.hint
        raise Timeout(f"{exc.message}; {_points_now(client, move)}", hint=hint) from None
    except NotFound as exc:  # no replica follows the alias
        raise NotFound(f"{exc.message}; {_points_now(client, move)}", hint=exc.hint) from None
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted with {progress.text()}; {_points_now(client, move)}",
            hint=f"see the fleet with: mdl status {name}" + (f"; {undo}" if move.changed and move.previous else ""),
        ) from None
    if not quiet:
        info(f"{plural(len(ready), 'replica')} ready on {name}/{version}; {name}:{alias} points at {version}")


def _after_failure(client: "Client", move: "MoveResult", exc: RolloutFailed, roll_back: bool) -> RolloutFailed:
    """The error for a replica that failed to load the version: rolled back (--rollback-on-failure,
    if this command moved the alias from an earlier version) or not, and where the alias points."""
    name, alias = move.name, move.alias
    status = f"see the fleet with: mdl status {name}"
    if roll_back and move.changed and move.previous:
        try:
            back = client.rollback(name, alias=alias)
        except MdlError as err:
            return RolloutFailed(
                f"{exc.message}; rolling back failed ({err.message}); {_points_now(client, move)}",
                hint=f"roll back with: mdl rollback {name} --alias {alias}",
                replicas=exc.replicas,
            )
        info(f"rolled back: {name}:{alias} -> {back.version}")
        return RolloutFailed(
            f"{exc.message}; rolled back, {_points_now(client, move)}", hint=status, replicas=exc.replicas
        )
    if move.changed and move.previous is None:  # nothing earlier to return to
        why = "not rolled back: it was unset before; " if roll_back else ""
        hint: str | None = f"point it at a version that loads: mdl promote {name} VERSION --alias {alias}"
    else:
        why = "not rolled back: this promote did not move it; " if roll_back else ""
        hint = exc.hint
    return RolloutFailed(f"{exc.message}; {why}{_points_now(client, move)}", hint=hint, replicas=exc.replicas)


def _points_now(client: "Client", move: "MoveResult") -> str:
    """Where the alias points, read again (another move may have landed); what this command set if
    the registry cannot be read."""
    try:
        now = client.pointer(move.name).aliases.get(move.alias)
    except MdlError:
        return f"{move.name}:{move.alias} points at {move.version} (as last set; the registry could not be read)"
    return f"{move.name}:{move.alias} points at {now}" if now else f"{move.name}:{move.alias} is not set"


def register(app: typer.Typer) -> None:
    app.command("promote")(promote)
