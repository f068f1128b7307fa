"""mdl gc: apply retention rules to a model (or every model); plan first, delete only with --yes."""

from typing import TYPE_CHECKING, Annotated

import typer

from mdl.cli.args import name_argument
from mdl.cli.common import (
    Column,
    JsonOpt,
    OutputOpt,
    QuietOpt,
    command,
    emit_json,
    emit_lines,
    finite,
    human_bytes,
    info,
    output_format,
    plural,
    print_table,
    state,
    timestamp,
)
from mdl.cli.rm import TrashOpt

if TYPE_CHECKING:
    from mdl.lifecycle import GcResult

COLUMNS = [
    Column("VERSION", ident=True),
    Column("ACTION"),
    Column("SIZE", drop=2),
    Column("CREATED", whole=True, drop=1),
    Column("WHY"),
    Column("BYTES", wide=True),
]


@command
def gc(
    ctx: typer.Context,
    name: Annotated[str | None, name_argument("The model (or --all).", show_default=False)] = None,
    every: Annotated[bool, typer.Option("--all", help="Every model, each under its own rules.")] = False,
    keep_last: Annotated[
        int | None,
        typer.Option(
            "--keep-last",
            metavar="N",
            min=1,
            max=1_000_000,
            help="Keep the newest N versions (default: config retention.keep_last).",
            show_default=False,
        ),
    ] = None,
    keep_days: Annotated[
        float | None,
        typer.Option(
            "--keep-days",
            metavar="DAYS",
            min=0,
            max=36500,
            callback=finite,
            help="Keep versions younger than DAYS days (default: config retention.keep_days).",
            show_default=False,
        ),
    ] = None,
    grace: Annotated[
        float | None,
        typer.Option(
            "--grace",
            metavar="SECONDS",
            min=0,
            max=31536000,
            callback=finite,
            help="Never delete versions or staging debris younger than this (default: config retention.grace).",
            show_default=False,
        ),
    ] = None,
    rollback_window: Annotated[
        int | None,
        typer.Option(
            "--rollback-window",
            metavar="K",
            min=0,
            max=1000,
            help="Keep the last K versions each alias pointed at (default: config retention.rollback_window).",
            show_default=False,
        ),
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Delete what the plan condemns (without it: only the plan).")
    ] = False,
    trash: TrashOpt = False,
    output: OutputOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Delete the versions retention rules condemn; without --yes only print the plan (what goes, why
    each survivor stays, bytes freed).

    Aliased and pinned versions, those in an alias's rollback window, those a live replica uses and
    those younger than the grace window are always kept; so is everything when no count or age rule
    is set. With --yes gc also finishes deletes an interrupted rm or gc left and removes staging
    debris older than the grace window. The rules come from the config (retention.*, per model
    retention.models) and the flags override them.
    """
    from dataclasses import replace

    from mdl.errors import InvalidInput
    from mdl.retention import Rules

    fmt = output_format(ctx, output, as_json)
    if (name is None) == (not every):
        raise InvalidInput(
            "give either a model NAME or --all" if name is None else "give a model NAME or --all, not both",
            hint="e.g. mdl gc lr --keep-last 10, or mdl gc --all",
        )
    st = state(ctx)
    client = st.client

    def rules_of(model: str) -> Rules:
        """The config's rules for ``model``, overridden by the flags given."""
        r = Rules.for_model(st.config, model)
        return replace(
            r,
            keep_last=r.keep_last if keep_last is None else keep_last,
            keep_days=r.keep_days if keep_days is None else keep_days,
            grace=r.grace if grace is None else grace,
            rollback_window=r.rollback_window if rollback_window is None else rollback_window,
        )

    names = [name] if name is not None else [m.name for m in client.list_models()]
    results = [client.gc(n, rules=rules_of(n), plan_only=not yes, trash=trash) for n in names]
    if fmt == "json":
        docs = [r.to_dict() for r in results]
        emit_json(docs[0] if name is not None else {"models": docs})
        return
    if quiet:
        emit_lines([d.version for r in results for d in (r.deleted if yes else r.plan.delete)])
    else:
        _table(results, every, wide=fmt == "wide")
    for r in results:
        _summary(r)
    if every and not results:
        info("no models yet: nothing to collect")


def _table(results: "list[GcResult]", every: bool, wide: bool) -> None:
    rows = []
    for r in results:
        done = {d.version for d in r.deleted}
        skipped = {s.version: s.reason for s in r.skipped}
        for d in r.plan.decisions:
            action, why = "keep", ", ".join(d.reasons)
            if d.delete:
                action = "delete" if r.plan_only else "deleted" if d.version in done else "skipped"
                why = skipped.get(d.version, why)
            row = [d.version, action, human_bytes(d.bytes), timestamp(d.created), why, str(d.bytes)]
            rows.append([r.plan.name, *row] if every else row)
    if rows:
        print_table([Column("MODEL", ident=True), *COLUMNS] if every else COLUMNS, rows, wide=wide)


def _summary(r: "GcResult") -> None:
    """What gc would do or did to one model, on stderr."""
    name, plan = r.plan.name, r.plan
    if not plan.rules.has_rule:
        info(
            f"no retention rule for {name}: set retention.keep_last or retention.keep_days, "
            "or pass --keep-last/--keep-days"
        )
    if r.finished:
        info(f"finished {plural(len(r.finished), 'interrupted delete')} of {name}: {', '.join(r.finished)}")
    if r.plan_only:
        if plan.delete:
            size = human_bytes(plan.bytes_freed)
            info(
                f"would delete {plural(len(plan.delete), 'version')} of {name}, {size}; run again with --yes to delete"
            )
        elif plan.rules.has_rule:
            info(f"nothing to delete in {name}: keeping {plural(len(plan.keep), 'version')}")
        return
    for s in r.skipped:
        info(f"skipped {name}/{s.version}: {s.reason}")
    if r.deleted:
        verb = "moved to the trash" if any(d.trash for d in r.deleted) else "deleted"
        size = human_bytes(sum(d.bytes for d in r.deleted))
        info(f"{verb} {plural(len(r.deleted), 'version')} of {name}, {size}")
    elif plan.rules.has_rule and not r.skipped:
        info(f"nothing to delete in {name}: keeping {plural(len(plan.keep), 'version')}")
    if r.staging:
        info(f"removed {plural(len(r.staging), 'staging path')} of {name}")


def register(app: typer.Typer) -> None:
    app.command("gc")(gc)
