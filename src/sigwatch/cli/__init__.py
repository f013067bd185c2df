"""The ``sigwatch`` command line: one module per command group, each handing over to packages.

``app`` is the entry point (``sigwatch = "sigwatch.cli:app"`` and ``python -m sigwatch``).
"""

from __future__ import annotations

import typer

from sigwatch.cli import detection, posts, server, source_opml
from sigwatch.cli.alerts import alert_app
from sigwatch.cli.channels import channel_app
from sigwatch.cli.config import config_app
from sigwatch.cli.db import db_app
from sigwatch.cli.deliveries import deliveries_app
from sigwatch.cli.sources import source_app
from sigwatch.cli.subscriptions import subscription_app
from sigwatch.cli.users import apikey_app, user_app
from sigwatch.cli.watchlist import watchlist_app

__all__ = ["app"]

app = typer.Typer(
    name="sigwatch",
    help="Watch feeds and accounts for token launches, listings and airdrops; alert in real time.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
server.register(app)
app.add_typer(db_app, name="db")
app.add_typer(config_app, name="config")
app.add_typer(user_app, name="user")
app.add_typer(apikey_app, name="apikey")
source_opml.register(source_app)
app.add_typer(source_app, name="source")
posts.register(app)
app.add_typer(alert_app, name="alert")
app.add_typer(channel_app, name="channel")
app.add_typer(subscription_app, name="subscription")
app.add_typer(watchlist_app, name="watchlist")
detection.register(app)
app.add_typer(deliveries_app, name="deliveries")
