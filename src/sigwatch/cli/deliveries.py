"""``sigwatch deliveries``: the outbox — notifications sent, pending and dead."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from sigwatch.cli.common import (
    USAGE_ERROR,
    cli_settings,
    console,
    fail,
    friendly_errors,
    open_database,
    run,
)
from sigwatch.config import Settings

deliveries_app = typer.Typer(
    help="The outbox: notifications sent, pending and dead.", no_args_is_help=True
)

STATUSES = ("pending", "sent", "dead")


@deliveries_app.command("list")
@friendly_errors
def deliveries_list(
    status: Annotated[
        str | None, typer.Option(help="pending, sent or dead (dead letters).")
    ] = "dead",
    limit: Annotated[int, typer.Option(min=1, max=200, help="Most rows to show.")] = 50,
) -> None:
    """List deliveries, dead letters by default, newest first, with the reason they failed."""
    if status is not None and status not in STATUSES:
        raise fail(f"unknown status {status!r}: use {', '.join(STATUSES)}", USAGE_ERROR)
    settings = cli_settings()
    rows = run(_deliveries_list(settings, status, limit))
    table = Table("id", "alert", "channel", "kind", "status", "attempts", "error")
    for row in rows:
        table.add_row(
            str(row.id),
            str(row.alert_id or "")
            or (f"system {row.system_alert_id}" if row.system_alert_id else ""),
            str(row.channel_id),
            row.kind,
            row.status,
            str(row.attempts),
            (row.last_error or "")[:80],
        )
    console.print(table)
    console.print(f"{len(rows)} deliveries")


async def _deliveries_list(settings: Settings, status: str | None, limit: int) -> list[Any]:
    from sigwatch.db.deliveries import list_deliveries

    async with open_database(settings) as sessions, sessions() as session:
        return (await list_deliveries(session, owner_id=None, status=status, limit=limit)).items


@deliveries_app.command("requeue")
@friendly_errors
def deliveries_requeue(
    ids: Annotated[list[int] | None, typer.Argument(help="Dead delivery ids.")] = None,
    all_dead: Annotated[bool, typer.Option("--all-dead", help="Every dead letter.")] = False,
) -> None:
    """Send dead letters again, from their first attempt (after fixing the channel)."""
    if not ids and not all_dead:
        raise fail("say which: delivery ids, or --all-dead", USAGE_ERROR)
    settings = cli_settings()
    count = run(_deliveries_requeue(settings, None if all_dead else ids))
    console.print(f"requeued {count} deliveries")


async def _deliveries_requeue(settings: Settings, ids: list[int] | None) -> int:
    from sigwatch.db.deliveries import requeue_deliveries
    from sigwatch.delivery.requeue import requeue_all_dead

    async with open_database(settings) as sessions, sessions.begin() as session:
        if ids is None:
            return await requeue_all_dead(session, owner_id=None)
        return len(await requeue_deliveries(session, ids, owner_id=None))
