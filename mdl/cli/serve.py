"""mdl serve: an HTTP inference server that follows an alias and swaps versions with no downtime."""

import re
from pathlib import Path
from typing import Annotated

import typer

from mdl.cli.args import NameArg, SwapOpt, alias_option, version_option
from mdl.cli.common import JsonOpt, KeepOpt, OutputOpt, command, event_printer, finite, output_format, state
from mdl.errors import InvalidInput, MdlError

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1000,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1000**3,
    "gib": 1024**3,
}


def parse_size(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise InvalidInput(f"--max-body {text!r} is not a size", hint="e.g. 16MiB, 512k or 1048576")
    n = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    if n < 1024:
        raise InvalidInput("--max-body must be at least 1 KiB")
    return n


def _check_stack() -> None:
    missing = []
    for module in ("uvicorn", "starlette", "orjson", "prometheus_client", "numpy"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise MdlError(f"mdl serve needs {', '.join(missing)}", hint="pip install 'mdl[serve]'")


@command
def serve(
    ctx: typer.Context,
    name: NameArg,
    alias: Annotated[str, alias_option("Follow this alias.")] = "latest",
    version: Annotated[str | None, version_option("Pin this version instead.", show_default=False)] = None,
    host: Annotated[
        str, typer.Option("--host", metavar="HOST", help="Address to listen on (0.0.0.0: every interface).")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", "-p", metavar="PORT", min=0, max=65535, help="Port (0: any free port).")
    ] = 8501,
    cache: Annotated[
        Path | None,
        typer.Option(
            "--cache",
            metavar="DIR",
            help="Local directory for verified versions (default: $XDG_CACHE_HOME/mdl/serve/NAME-PORT).",
            show_default=False,
        ),
    ] = None,
    loader: Annotated[
        str | None,
        typer.Option(
            "--loader",
            metavar="MODULE:FUNCTION",
            help="Load versions "
            "with this function (called with the version directory; returns an object with "
            "predict). Default: by the manifest's format (onnx, skops, pickle, joblib).",
            show_default=False,
        ),
    ] = None,
    swap: SwapOpt = "availability",
    max_batch: Annotated[
        int,
        typer.Option(
            "--max-batch",
            metavar="N",
            min=1,
            max=4096,
            help="Most requests answered by one predict call (1: no batching).",
        ),
    ] = 64,
    max_body: Annotated[
        str, typer.Option("--max-body", metavar="SIZE", help="Largest request body (larger: 413).")
    ] = "16MiB",
    keep: KeepOpt = 3,
    graceful_timeout: Annotated[
        float,
        typer.Option(
            "--graceful-timeout",
            metavar="SECONDS",
            min=0,
            callback=finite,
            help="Seconds in-flight requests get to finish on SIGTERM.",
        ),
    ] = 10.0,
    max_unavailable: Annotated[
        int,
        typer.Option(
            "--max-unavailable",
            metavar="N",
            min=0,
            help="With --swap resource: servers of this model that may be out of rotation (draining, "
            "loading) at once across the fleet; the rest wait their turn serving the old version (0: no cap).",
        ),
    ] = 1,
    drain_delay: Annotated[
        float | None,
        typer.Option(
            "--drain-delay",
            metavar="SECONDS",
            min=0,
            max=3600,
            callback=finite,
            help="Seconds it keeps answering after leaving the registry's list, on SIGTERM and before a "
            "--swap resource unload, so balancers following the registry drop it first "
            "(default: config serve.drain_delay, 2).",
            show_default=False,
        ),
    ] = None,
    read_timeout: Annotated[
        float,
        typer.Option(
            "--read-timeout",
            metavar="SECONDS",
            min=0.1,
            callback=finite,
            help="Time a client has to send a request's line and headers (counted from connecting, "
            "or from their first bytes on a kept-alive connection), then again to send its whole "
            "body. Slower: the connection is closed (a late body gets 408 first).",
        ),
    ] = 30.0,
    max_connections: Annotated[
        int,
        typer.Option(
            "--max-connections",
            metavar="N",
            min=1,
            help="Open HTTP connections served at a time. A connection past it gets 503 to its request and is closed.",
        ),
    ] = 1024,
    require_signature: Annotated[
        bool,
        typer.Option(
            "--require-signature",
            help="Load only versions with a valid signature from a trusted key or CA (trust.require_signature).",
        ),
    ] = False,
    output: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Serve a model over HTTP (Open Inference Protocol v2, TF Serving REST, /metrics), following an alias.

    New versions load off the request path and replace the old one atomically; if one fails to load,
    the old one keeps serving and the replica reports failed. The server registers as a replica:
    `mdl endpoints NAME` lists it, `mdl status` shows it, `promote --wait` waits for it.
    SIGTERM/SIGINT: deregister, keep answering for --drain-delay seconds (balancers following the
    registry drop it meanwhile), finish in-flight requests, exit. SIGHUP: re-sync.

    Security: loading a pickle or joblib model runs code from it, so whoever can push or promote a
    version can run code on every server that serves it. ONNX and skops load without running code;
    config serve.pickle (allow, signed, deny) decides what happens to pickles.
    """
    if swap not in ("availability", "resource"):
        raise InvalidInput(f"--swap {swap!r}: use availability or resource")
    fmt = output_format(ctx, output, as_json)
    size = parse_size(max_body)
    _check_stack()
    from mdl.server.runner import ServeOptions
    from mdl.server.runner import serve as serve_model

    opts = ServeOptions(
        alias=alias,
        version=version,
        host=host,
        port=port,
        cache=cache,
        loader=loader,
        swap=swap,
        max_batch=max_batch,
        max_body=size,
        keep=keep,
        graceful_timeout=graceful_timeout,
        max_unavailable=max_unavailable,
        drain_delay=state(ctx).config["serve.drain_delay"] if drain_delay is None else drain_delay,
        read_timeout=read_timeout,
        max_connections=max_connections,
        require_signature=require_signature,
        pickle=state(ctx).config["serve.pickle"],
        skops_trusted=tuple(state(ctx).config["serve.skops_trusted"] or ()),
    )
    code = serve_model(state(ctx).client, name, opts, event_printer(fmt))
    if code:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
