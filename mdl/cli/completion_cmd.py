"""mdl completion: print the shell completion script for bash, zsh or fish."""

from typing import Annotated

import typer

from mdl.cli.completion import script

SHELLS = ("bash", "zsh", "fish")


def _complete_shell(incomplete: str) -> list[str]:
    return [s for s in SHELLS if s.startswith(incomplete)]


def completion(
    shell: Annotated[str, typer.Argument(metavar="SHELL", help="bash, zsh or fish.", autocompletion=_complete_shell)],
) -> None:
    """Print the completion script for a shell (models, versions and aliases come from the registry).

    Load it in every new shell: bash: add `source <(mdl completion bash)` to ~/.bashrc; zsh: add
    `source <(mdl completion zsh)` to ~/.zshrc (after compinit); fish: `mdl completion fish >
    ~/.config/fish/completions/mdl.fish`.
    """
    text = script(shell) if shell in SHELLS else None
    if text is None:
        from mdl.cli.common import report_error
        from mdl.errors import InvalidInput

        raise typer.Exit(report_error(InvalidInput(f"no completion for shell {shell!r}", hint="use bash, zsh or fish")))
    typer.echo(text, nl=False)


def register(app: typer.Typer) -> None:
    app.command("completion")(completion)
