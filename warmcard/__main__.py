from warmcard.command.cli import app

app()
