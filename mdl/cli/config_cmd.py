"""mdl config: the effective configuration and where each value came from."""

import typer

from mdl.cli.common import Column, JsonOpt, OutputOpt, command, emit_json, info, output_format, print_table, state
from mdl.config import show_value


@command
def config(ctx: typer.Context, output: OutputOpt = None, as_json: JsonOpt = False) -> None:
    """Show every setting's effective value and its origin (flag, env, file, default)."""
    fmt = output_format(ctx, output, as_json)
    cfg = state(ctx).config
    if fmt == "json":
        emit_json(
            {
                "file": str(cfg.path) if cfg.path else None,
                "looked_for": str(cfg.looked_for),
                "context": cfg.context,
                "settings": {k: {"value": v.value, "origin": v.origin} for k, v in cfg.items()},
            }
        )
        return
    if cfg.path:
        info(f"config file: {cfg.path}" + (f", context: {cfg.context}" if cfg.context else ""))
    else:
        info(f"config file: none (looked for {cfg.looked_for}; create it, or name one with --config or MDL_CONFIG)")
    print_table(
        [Column("KEY", ident=True), Column("VALUE", ident=True), Column("ORIGIN")],
        [[k, show_value(v.value), v.origin] for k, v in cfg.items()],
        wide=fmt == "wide",
    )


def register(app: typer.Typer) -> None:
    app.command("config")(config)
