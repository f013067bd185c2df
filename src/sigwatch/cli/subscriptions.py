"""``sigwatch subscription``: which alerts go to which channels, how often, and when not.

A subscription belongs to the owner of its channels: ``--user`` names them, and left out it is
the owner of the first ``--channel``. The filters are those of the API's subscription schema;
each left out matches any alert.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer
from rich.table import Table

from sigwatch.cli.common import (
    USAGE_ERROR,
    check_choices,
    cli_settings,
    console,
    fail,
    friendly_errors,
    open_database,
    run,
)
from sigwatch.cli.owners import all_usernames, user_named
from sigwatch.config import Settings
from sigwatch.db.audit import record_audit, snapshot
from sigwatch.db.models import Subscription
from sigwatch.db.subscriptions import MODES, NOTIFY_ON
from sigwatch.detect.events import EVENT_TYPES, URGENCIES

subscription_app = typer.Typer(
    help="Subscriptions: which alerts are sent to which channels.", no_args_is_help=True
)

_QUIET_HOURS = re.compile(r"(?P<start>\d\d:\d\d)-(?P<end>\d\d:\d\d)")


@subscription_app.command("add")
@friendly_errors
def subscription_add(
    channels: Annotated[
        list[int], typer.Option("--channel", help="Channel id to send to; repeat for several.")
    ],
    name: Annotated[str | None, typer.Option("--name", help="Display name.")] = None,
    entities: Annotated[
        list[str] | None, typer.Option("--entity", help="Only alerts about this entity.")
    ] = None,
    tags: Annotated[
        list[str] | None, typer.Option("--tag", help="Only entities with this tag.")
    ] = None,
    events: Annotated[
        list[str] | None,
        typer.Option("--event", help=f"Only this event: {', '.join(EVENT_TYPES)}."),
    ] = None,
    min_confidence: Annotated[
        float | None, typer.Option("--min-confidence", min=0, max=1, help="Lowest confidence.")
    ] = None,
    urgencies: Annotated[
        list[str] | None,
        typer.Option("--urgency", help=f"Only this urgency: {', '.join(URGENCIES)}."),
    ] = None,
    sources: Annotated[
        list[int] | None, typer.Option("--source", help="Only alerts with evidence from it.")
    ] = None,
    mode: Annotated[
        str, typer.Option(help=f"When to send: {', '.join(MODES)} (a digest).")
    ] = "instant",
    notify_on: Annotated[
        str,
        typer.Option("--notify-on", help=f"What to send: {', '.join(NOTIFY_ON)}."),
    ] = "new",
    quiet_hours: Annotated[
        str | None,
        typer.Option(
            "--quiet-hours", metavar="HH:MM-HH:MM", help="Daily UTC window without messages."
        ),
    ] = None,
    user: Annotated[
        str | None, typer.Option("--user", help="Owner; default the first channel's owner.")
    ] = None,
    system_alerts: Annotated[
        bool,
        typer.Option(
            "--system-alerts", help="Also send sources' alarms: silent, stale or failing."
        ),
    ] = False,
) -> None:
    """Subscribe to the alerts the filters match (repeat a filter for any of several values)."""
    check_choices("--event", events, EVENT_TYPES)
    check_choices("--urgency", urgencies, URGENCIES)
    check_choices("--mode", [mode], MODES)
    check_choices("--notify-on", [notify_on], NOTIFY_ON)
    quiet = None
    if quiet_hours is not None:
        matched = _QUIET_HOURS.fullmatch(quiet_hours)
        if matched is None:
            raise fail(
                f"--quiet-hours {quiet_hours!r}: give a UTC window as HH:MM-HH:MM, "
                "e.g. 22:00-07:00",
                USAGE_ERROR,
            )
        quiet = {"start": matched["start"], "end": matched["end"]}
    filters: dict[str, Any] = {
        "entities": entities or [],
        "tags": tags or [],
        "events": events or [],
        "urgencies": urgencies or [],
        "source_ids": sources or [],
        "min_confidence": min_confidence,
    }
    fields = {
        "name": name or f"alerts to channel {', '.join(str(c) for c in channels)}",
        "channel_ids": channels,
        "filters": filters,
        "mode": mode,
        "notify_on": notify_on,
        "quiet_hours": quiet,
        "system_alerts": system_alerts,
    }
    settings = cli_settings()
    subscription_id, owner = run(_subscription_add(settings, fields, user))
    console.print(f"subscription {subscription_id} added for {owner}", highlight=False)


async def _subscription_add(
    settings: Settings, fields: dict[str, Any], username: str | None
) -> tuple[int, str]:
    from sigwatch.db.channels import get_channel
    from sigwatch.db.subscriptions import create_subscription
    from sigwatch.db.users import get_user

    async with open_database(settings) as sessions, sessions.begin() as session:
        for channel_id in fields["channel_ids"]:
            # An unknown channel is named here, whoever owns the subscription.
            await get_channel(session, channel_id, owner_id=None)
        if username is not None:
            owner = await user_named(session, username)
        else:
            first = await get_channel(session, fields["channel_ids"][0], owner_id=None)
            owner = await get_user(session, first.owner_id)
        subscription = await create_subscription(
            session,
            owner_id=owner.id,
            # An admin's filters may name any source; a user's only their own, as in the API.
            sources_of=None if owner.role == "admin" else owner.id,
            **fields,
        )
        after = snapshot(subscription)
        await record_audit(session, "cli", "create", "subscription", subscription.id, None, after)
        return subscription.id, owner.username


@subscription_app.command("list")
@friendly_errors
def subscription_list() -> None:
    """List every user's subscriptions with their filters."""
    settings = cli_settings()
    found, owners = run(_subscription_list(settings))
    table = Table("id", "owner", "name", "enabled", "channels", "mode", "notify on", "filters")
    for subscription in found:
        table.add_row(
            str(subscription.id),
            owners.get(subscription.owner_id, "?"),
            subscription.name,
            "yes" if subscription.enabled else "no",
            ", ".join(str(c) for c in subscription.channel_ids) or "none",
            subscription.mode,
            subscription.notify_on,
            _filters(subscription),
        )
    console.print(table)
    console.print(f"{len(found)} subscriptions")


def _filters(subscription: Subscription) -> str:
    """The filters set, as ``key=value`` pairs; "any alert" when there are none."""
    parts = []
    for key, value in subscription.filters.items():
        if value in (None, [], ""):
            continue
        parts.append(f"{key}={','.join(map(str, value)) if isinstance(value, list) else value}")
    if subscription.quiet_hours:
        parts.append(f"quiet {subscription.quiet_hours['start']}-{subscription.quiet_hours['end']}")
    return "; ".join(parts) or "any alert"


async def _subscription_list(
    settings: Settings,
) -> tuple[list[Subscription], dict[int | None, str]]:
    from sigwatch.db.subscriptions import list_subscriptions

    async with open_database(settings) as sessions, sessions() as session:
        found: list[Subscription] = []
        cursor: str | None = None
        while True:
            page = await list_subscriptions(session, owner_id=None, cursor=cursor, limit=200)
            found.extend(page.items)
            if page.next_cursor is None:
                return found, await all_usernames(session)
            cursor = page.next_cursor


@subscription_app.command("remove")
@friendly_errors
def subscription_remove(
    subscription_id: Annotated[
        int, typer.Argument(help="Subscription id, as `sigwatch subscription list` shows it.")
    ],
) -> None:
    """Remove a subscription; notifications already queued for it are still sent."""
    settings = cli_settings()
    name = run(_subscription_remove(settings, subscription_id))
    console.print(f"subscription {subscription_id} removed: {name}", highlight=False)


async def _subscription_remove(settings: Settings, subscription_id: int) -> str:
    from sigwatch.db.subscriptions import delete_subscription, get_subscription

    async with open_database(settings) as sessions, sessions.begin() as session:
        before = snapshot(await get_subscription(session, subscription_id, owner_id=None))
        removed = await delete_subscription(session, subscription_id, owner_id=None)
        await record_audit(session, "cli", "delete", "subscription", subscription_id, before, None)
        return removed.name
