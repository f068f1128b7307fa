from mdl.cli.app import app

app(prog_name="mdl")
