"""Console-script entry point."""

from __future__ import annotations

from typing import NoReturn


def main() -> NoReturn:
    import gc
    import os
    import sys

    # No cycle collection while the CLI's modules load (about 10 ms of start-up): imports make many
    # objects and no garbage. It is back on (``mdl.cli.app.main``) before a command runs.
    gc.disable()
    complete = os.environ.get("_MDL_COMPLETE", "")
    if complete.startswith("source_"):  # mdl's own scripts: see mdl.cli.completion
        from mdl.cli.completion import script

        source = script(complete.removeprefix("source_"))
        if source is not None:
            sys.stdout.write(source)
            exit_now(0)
    from mdl.cli.app import run

    try:
        code = run(sys.argv[1:])
    except SystemExit as exc:  # completion requests end this way
        exit_now(exc.code)
    exit_now(code)


def exit_now(code: object) -> NoReturn:
    """End the process without the interpreter's teardown of every loaded module.

    That teardown is a fifth of a short command's run time (about 25 ms) and does nothing the OS
    does not. What exit must still do is done: atexit handlers run and stdout/stderr are flushed.
    With a non-daemon thread still running, a normal exit joins it as usual.
    """
    import atexit
    import os
    import sys

    threading = sys.modules.get("threading")
    run_exitfuncs = getattr(atexit, "_run_exitfuncs", None)
    busy = threading is not None and any(
        t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()
    )
    if busy or run_exitfuncs is None:
        sys.exit(code)  # type: ignore[arg-type]  # sys.exit takes any object (printed, status 1)
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        print(code, file=sys.stderr)
        status = 1
    run_exitfuncs()
    try:
        sys.stdout.flush()
    except BrokenPipeError:  # the reader went away (`mdl list | head`): not an error of ours
        pass
    except OSError:
        status = status or 1
    try:
        sys.stderr.flush()
    except OSError:
        pass
    os._exit(status)
