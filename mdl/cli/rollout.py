"""mdl rollout: move an alias's replicas to a new version in steps, gated, with automatic abort."""

import re
from typing import Annotated, Any

import typer

from mdl.cli.args import alias_option, name_argument, version_argument
from mdl.cli.common import (
    JsonOpt,
    OutputOpt,
    command,
    emit_json,
    event_printer,
    help_if_bare,
    info,
    output_format,
    printable,
    state,
)
from mdl.errors import InvalidInput

rollout_app = typer.Typer(
    name="rollout",
    help="Staged rollouts: an alias's replicas move to a version in steps, gated, aborted on failure.",
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
NameArg = Annotated[str, name_argument()]
DetachOpt = Annotated[
    bool, typer.Option("--detach", help="Write the change and return; `mdl rollout resume` drives it later.")
]
_UNITS = {"": 1, "ms": 0.001, "s": 1, "m": 60, "h": 3600}


def parse_duration(text: str, flag: str) -> float:
    """``90``, ``50ms``, ``90s``, ``2m``, ``1h`` -> seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|[smh]?)\s*", text)
    if not m:
        raise InvalidInput(f"{flag} {text!r} is not a duration", hint="e.g. 50ms, 90s, 2m or 1h")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_percent(text: str) -> float:
    """``1%`` or ``1`` -> 0.01."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*%?\s*", text)
    if not m or float(m.group(1)) > 100:
        raise InvalidInput(f"--max-error-rate {text!r} is not a percentage", hint="e.g. --max-error-rate 1%")
    return float(m.group(1)) / 100


def _choice(value: str, flag: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise InvalidInput(f"{flag} {value!r}: use {', '.join(choices)}")
    return value


def parse_steps(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(p.strip().rstrip("%")) for p in text.split(","))
    except ValueError:
        raise InvalidInput(
            f"--steps {text!r}: percentages separated by commas", hint="e.g. --steps 10,50,100"
        ) from None


@rollout_app.callback(invoke_without_command=True)
def rollout(ctx: typer.Context) -> None:
    """Staged rollouts: an alias's replicas move to a version in steps, gated, aborted on failure."""
    help_if_bare(ctx)


@rollout_app.command("start")
@command
def start(
    ctx: typer.Context,
    name: NameArg,
    version: Annotated[str, version_argument("The candidate version.")],
    alias: Annotated[str, alias_option("The alias whose replicas move.")] = "latest",
    steps: Annotated[
        str, typer.Option("--steps", metavar="W1,W2,...", help="Percent of the followers on the candidate per step.")
    ] = "10,50,100",
    interval: Annotated[
        str, typer.Option("--interval", metavar="DURATION", help="How long each step runs once its replicas are ready.")
    ] = "2m",
    ready_timeout: Annotated[
        str,
        typer.Option("--ready-timeout", metavar="DURATION", help="A step's replicas must be ready within this."),
    ] = "5m",
    gate_cmd: Annotated[
        str | None,
        typer.Option(
            "--gate-cmd",
            metavar="CMD",
            help="Run at the end of each step (exit 0 passes); $MDL_CANDIDATE_URLS lists the candidate's servers.",
            show_default=False,
        ),
    ] = None,
    max_error_rate: Annotated[
        str | None,
        typer.Option(
            "--max-error-rate",
            metavar="PERCENT",
            help="Gate: the candidate's 5xx answers during a step at most this share (e.g. 1%).",
            show_default=False,
        ),
    ] = None,
    max_p99: Annotated[
        str | None,
        typer.Option(
            "--max-p99",
            metavar="DURATION",
            help="Gate: the candidate's p99 latency during a step at most this (e.g. 50ms; histogram buckets).",
            show_default=False,
        ),
    ] = None,
    min_requests: Annotated[
        int, typer.Option("--min-requests", metavar="N", min=0, help="Requests the candidate must answer to be judged.")
    ] = 1,
    on_no_data: Annotated[
        str,
        typer.Option("--on-no-data", metavar="pause|pass|fail", help="When a step saw too few requests to judge."),
    ] = "pause",
    failure_limit: Annotated[
        int,
        typer.Option(
            "--failure-limit", metavar="N", min=0, help="Failed gate checks tolerated (each re-runs the step)."
        ),
    ] = 0,
    detach: DetachOpt = False,
    output: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Start a staged rollout of VERSION to the replicas following ALIAS, and drive it to the end.

    At each step that share of the live followers runs the candidate (sticky, exact within one replica);
    once they are ready the step runs --interval, then its gate decides: pass, the next step; fail,
    every replica goes back to the stable version (exit 1). After the last step the alias moves.
    The state is in the registry: if this process dies, `mdl rollout resume NAME` continues it anywhere.
    """
    from mdl.rollout.driver import RolloutDriver, RolloutOptions
    from mdl.rollout.gates import Thresholds

    fmt = output_format(ctx, output, as_json)
    opts = RolloutOptions(
        steps=parse_steps(steps),
        interval=parse_duration(interval, "--interval"),
        ready_timeout=parse_duration(ready_timeout, "--ready-timeout"),
        gate_cmd=gate_cmd,
        thresholds=Thresholds(
            max_error_rate=parse_percent(max_error_rate) if max_error_rate is not None else None,
            max_p99=parse_duration(max_p99, "--max-p99") if max_p99 is not None else None,
            min_requests=min_requests,
            on_no_data=_choice(on_no_data, "--on-no-data", ("pause", "pass", "fail")),
        ),
        failure_limit=failure_limit,
    ).check()
    driver = RolloutDriver(state(ctx).client, name, emit=event_printer(fmt))
    driver.start(version, alias, opts)
    if not detach:
        _drive(driver)


@rollout_app.command("resume")
@command
def resume(
    ctx: typer.Context, name: NameArg, detach: DetachOpt = False, output: OutputOpt = None, as_json: JsonOpt = False
) -> None:
    """Continue a paused rollout, or drive one whose driver stopped, to the end (from any machine)."""
    from mdl.rollout.driver import RolloutDriver

    driver = RolloutDriver(state(ctx).client, name, emit=event_printer(output_format(ctx, output, as_json)))
    driver.resume()
    if not detach:
        _drive(driver)


@rollout_app.command("abort")
@command
def abort(
    ctx: typer.Context,
    name: NameArg,
    reason: Annotated[str, typer.Option("--reason", metavar="TEXT", help="Why (recorded).")] = "aborted by hand",
    output: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Stop the rollout and return every replica to the stable version."""
    from mdl.rollout.driver import RolloutDriver

    RolloutDriver(state(ctx).client, name, emit=event_printer(output_format(ctx, output, as_json))).abort(reason)


@rollout_app.command("pause")
@command
def pause(
    ctx: typer.Context,
    name: NameArg,
    reason: Annotated[str, typer.Option("--reason", metavar="TEXT", help="Why (recorded).")] = "paused by hand",
    output: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Hold the rollout where it is (replicas keep their versions) until `mdl rollout resume`."""
    from mdl.rollout.driver import RolloutDriver

    RolloutDriver(state(ctx).client, name, emit=event_printer(output_format(ctx, output, as_json))).pause(reason)


@rollout_app.command("promote")
@command
def promote(ctx: typer.Context, name: NameArg, output: OutputOpt = None, as_json: JsonOpt = False) -> None:
    """Finish at once: the alias moves to the candidate, every follower with it."""
    from mdl.rollout.driver import RolloutDriver

    RolloutDriver(state(ctx).client, name, emit=event_printer(output_format(ctx, output, as_json))).promote()


@rollout_app.command("status")
@command
def status(
    ctx: typer.Context,
    name: NameArg,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="Say it again after every change until the rollout ends.")
    ] = False,
    output: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Where the model's rollout stands: steps, weight, replicas per version.

    With -w it follows the rollout until it ends: exit 0 if it succeeded, 1 if it was aborted.
    """
    from mdl.rollout.status import follow
    from mdl.rollout.status import status as read

    fmt = output_format(ctx, output, as_json)
    client = state(ctx).client
    docs = follow(client, name) if watch else iter([read(client, name)])
    last: dict[str, Any] = {}
    for doc in docs:
        if fmt == "json":
            typer.echo(_one_line_json(doc)) if watch else emit_json(doc)
        else:  # the whole picture first, then a line per change (as kubectl rollout status does)
            text = _summary(doc) if last else _describe(doc)
            typer.echo("\n".join(printable(line) for line in text.split("\n")))  # registry text: escaped
        last = doc
    if watch and last.get("state") == "aborted":
        from mdl.errors import RolloutFailed

        raise RolloutFailed(
            f"the rollout of {name} was aborted: {last.get('reason')}",
            hint=f"every replica is back on {last.get('stable')}; see what happened with: mdl history {name}",
        )


def _one_line_json(doc: dict[str, Any]) -> str:
    import json

    return json.dumps(doc, sort_keys=True)


def _summary(doc: dict[str, Any]) -> str:
    counts = ", ".join(f"{v}: {n}" for v, n in doc["counts"].items()) or "none"
    return (
        f"{doc['state']}: step {doc['step'] + 1} of {len(doc['steps'])} ({doc['weight']}%), "
        f"{len(doc['assigned'])} of {doc['followers']} on {doc['candidate']}; loaded: {counts}"
        + (f" ({doc['reason']})" if doc.get("reason") else "")
    )


def _describe(doc: dict[str, Any]) -> str:
    """The human form of a status document."""
    counts = ", ".join(f"{v}: {n}" for v, n in doc["counts"].items()) or "none"
    steps = ",".join(map(str, doc["steps"]))
    lines = [
        f"rollout {doc['id']} of {doc['name']}:{doc['alias']}: {doc['stable']} -> {doc['candidate']}",
        f"state:    {doc['state']}" + (f" ({doc['reason']})" if doc.get("reason") else ""),
        f"step:     {doc['step'] + 1} of {len(doc['steps'])} ({doc['weight']}%; steps {steps})",
        f"replicas: {len(doc['assigned'])} of {doc['followers']} on the candidate; loaded: {counts}",
    ]
    return "\n".join(lines)


def _drive(driver: Any) -> None:
    """Drive until the rollout ends: SIGTERM/SIGINT leave it where it stands (resume continues it)."""
    import signal
    import threading

    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        final = driver.run(stop)
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    then = f"continue it with: mdl rollout resume {driver.name}"
    if final.state == "paused":
        info(f"the rollout of {driver.name} is paused: {final.reason}; {then}")
    elif final.state == "running":
        info(f"the rollout of {driver.name} stays at step {final.step + 1}; {then}")


def register(app: typer.Typer) -> None:
    app.add_typer(rollout_app, name="rollout")
