from warmcard.cli import app

app()
