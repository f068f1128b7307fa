"""Arguments and options that several commands share, with the shell completion each one offers
(``-o`` and the ``--alias`` of promote, rollback and push are ``OutputOpt``/``AliasOpt`` in common).

``NameArg`` and friends are ready-made ``Annotated`` types; the ``*_argument``/``*_option``
functions make the same with a command's own help text.
"""

from typing import Annotated, Any

import typer

from mdl.cli.completion import (
    complete_alias,
    complete_context,
    complete_format,
    complete_model,
    complete_swap,
    complete_version,
)


def name_argument(help: str = "Model name.", **kwargs: Any) -> Any:
    return typer.Argument(metavar="NAME", help=help, autocompletion=complete_model, **kwargs)


def version_argument(help: str, **kwargs: Any) -> Any:
    kwargs.setdefault("metavar", "VERSION")
    return typer.Argument(help=help, autocompletion=complete_version, **kwargs)


def version_option(help: str, **kwargs: Any) -> Any:
    """``--version/-V`` naming an existing version of the command's model."""
    kwargs.setdefault("metavar", "VERSION")
    return typer.Option("--version", "-V", help=help, autocompletion=complete_version, **kwargs)


def alias_option(help: str, **kwargs: Any) -> Any:
    kwargs.setdefault("metavar", "ALIAS")
    return typer.Option("--alias", "-a", help=help, autocompletion=complete_alias, **kwargs)


def alias_argument(help: str, **kwargs: Any) -> Any:
    return typer.Argument(metavar="ALIAS", help=help, autocompletion=complete_alias, **kwargs)


def context_option(help: str, **kwargs: Any) -> Any:
    return typer.Option("--context", metavar="NAME", help=help, autocompletion=complete_context, **kwargs)


NameArg = Annotated[str, name_argument()]
VersionArg = Annotated[str, version_argument("The version.")]
FormatOpt = Annotated[
    str | None,
    typer.Option(
        "--format",
        metavar="FORMAT",
        help="Format hint recorded in the manifest (default: detected).",
        show_default=False,
        autocompletion=complete_format,
    ),
]
SwapOpt = Annotated[
    str,
    typer.Option(
        "--swap",
        metavar="POLICY",
        help="availability: load the new version beside the old, then switch (needs memory for both); "
        "resource: drop the old first (requests get 503 while loading).",
        autocompletion=complete_swap,
    ),
]
