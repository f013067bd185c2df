from sigwatch.cli import app

app()
