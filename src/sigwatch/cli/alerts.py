"""``sigwatch alert``: list alerts, show one with its evidence, acknowledge, resolve, dismiss.

The command line is the operator's view, so it sees every alert as the whole story (as an admin
does in the API); a status change is kept in the alert's history under the actor ``cli`` and
published to live clients, exactly as a change made through the API.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from sigwatch.alerts.lifecycle import STATUSES
from sigwatch.cli.common import (
    check_choices,
    cli_settings,
    console,
    friendly_errors,
    open_database,
    run,
    when,
)
from sigwatch.config import Settings
from sigwatch.db.alerts import AlertShown, HistoryEntry
from sigwatch.db.models import AlertEvidence, Post
from sigwatch.detect.events import EVENT_TYPES

alert_app = typer.Typer(help="Alerts: what was detected, with evidence.", no_args_is_help=True)

AlertIds = Annotated[
    list[int], typer.Argument(help="Alert ids, as `sigwatch alert list` shows them.")
]
Note = Annotated[str | None, typer.Option("--note", help="Why, kept in the alert's history.")]


@alert_app.command("list")
@friendly_errors
def alert_list(
    status: Annotated[
        str | None, typer.Option(help=f"Only this status: {', '.join(STATUSES)}.")
    ] = None,
    event_type: Annotated[
        str | None, typer.Option("--type", help=f"Only this event: {', '.join(EVENT_TYPES)}.")
    ] = None,
    entity: Annotated[str | None, typer.Option(help="Only this entity.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Most alerts to show.")] = 50,
) -> None:
    """List alerts, newest first."""
    check_choices("--status", [status] if status else None, STATUSES)
    check_choices("--type", [event_type] if event_type else None, EVENT_TYPES)
    settings = cli_settings()
    alerts = run(_alert_list(settings, status, event_type, entity, limit))
    table = Table(
        "id", "status", "entity", "event", "confidence", "urgency", "sources", "title", "created"
    )
    for alert in alerts:
        table.add_row(
            str(alert.id),
            alert.status,
            alert.entity,
            alert.event,
            f"{alert.confidence:.2f}",
            alert.urgency,
            str(alert.source_count),
            alert.title[:60],
            when(alert.created_at),
        )
    console.print(table)
    console.print(f"{len(alerts)} alerts")


async def _alert_list(
    settings: Settings, status: str | None, event: str | None, entity: str | None, limit: int
) -> list[AlertShown]:
    from sigwatch.db.alerts import list_alerts

    async with open_database(settings) as sessions, sessions() as session:
        page = await list_alerts(
            session, viewer_id=None, status=status, event=event, entity=entity, limit=limit
        )
        return page.items


@alert_app.command("show")
@friendly_errors
def alert_show(
    alert_id: Annotated[int, typer.Argument(help="Alert id, as `sigwatch alert list` shows it.")],
) -> None:
    """Show one alert with its evidence (the posts, matched words, features) and history."""
    settings = cli_settings()
    alert, evidence, history = run(_alert_show(settings, alert_id))
    console.print(f"[bold]alert {alert.id}[/]: {alert.title}", highlight=False)
    facts = Table("field", "value", show_header=False)
    for field, value in (
        ("entity", alert.entity),
        ("event", alert.event),
        ("status", alert.status),
        ("confidence", f"{alert.confidence:.2f}"),
        ("urgency", alert.urgency),
        ("event time", when(alert.event_time) if alert.event_time else "unknown"),
        ("first seen", when(alert.first_seen_at)),
        ("first source", str(alert.first_source_id or "")),
        ("lead time", "" if alert.lead_time_s is None else f"{alert.lead_time_s:.0f}s"),
        ("sources", str(alert.source_count)),
        ("evidence", str(alert.evidence_count)),
    ):
        facts.add_row(field, value)
    console.print(facts)
    console.print(f"[bold]evidence[/] ({len(evidence)} posts)")
    for item, post in evidence:
        headline = (post.title or post.text).replace("\n", " ")[:120]
        console.print(
            f"  {when(item.published_at)}  source {item.source_id}  "
            f"confidence {item.confidence:.2f}  {headline}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        if post.url:
            console.print(f"    {post.url}", style="cyan", highlight=False, soft_wrap=True)
        matched = ", ".join(_span_text(span) for span in item.spans)
        if matched:
            console.print(f"    matched: {matched}", highlight=False, markup=False)
        if item.features:
            console.print(f"    features: {_features(item.features)}", highlight=False)
    console.print("[bold]history[/]")
    for change in history:
        move = f"{change.from_status} -> {change.to_status}" if change.to_status else ""
        note = change.detail.get("note") or ""
        console.print(
            f"  {when(change.at)}  {change.actor}  {change.action} {move} {note}".rstrip(),
            highlight=False,
            markup=False,
        )


def _span_text(span: dict[str, Any]) -> str:
    """A matched piece of text with what it matched as, e.g. "listing" (keyword)."""
    return f"{span.get('text', '')!r} ({span.get('kind', 'match')})"


def _features(features: dict[str, Any]) -> str:
    parts = []
    for name, value in features.items():
        parts.append(f"{name} {value:.2f}" if isinstance(value, float) else f"{name} {value}")
    return ", ".join(parts)


async def _alert_show(
    settings: Settings, alert_id: int
) -> tuple[AlertShown, list[tuple[AlertEvidence, Post]], list[HistoryEntry]]:
    from sigwatch.db.alerts import alert_evidence, alert_history, get_alert

    async with open_database(settings) as sessions, sessions() as session:
        alert = await get_alert(session, alert_id, viewer_id=None)
        evidence = await alert_evidence(session, alert_id, viewer_id=None)
        history = await alert_history(session, alert_id, viewer_id=None)
        return alert, evidence, history


def _change(alert_ids: list[int], status: str, note: str | None) -> None:
    settings = cli_settings()
    changed = run(_change_status(settings, alert_ids, status, note))
    for alert, history_id in changed:
        said = f"is now {status}" if history_id is not None else f"was already {status}"
        console.print(f"alert {alert.id} {said}", highlight=False)


async def _change_status(
    settings: Settings, alert_ids: list[int], status: str, note: str | None
) -> list[tuple[AlertShown, int | None]]:
    from sigwatch.alerts.lifecycle import change_status
    from sigwatch.live.bus import create_bus
    from sigwatch.live.events import publish_alert_events

    async with open_database(settings) as sessions:
        async with sessions.begin() as session:
            changed = await change_status(
                session, alert_ids, status, viewer_id=None, actor_id=None, actor="cli", note=note
            )
        # With Redis, the API processes' live clients see the change as if made through the API.
        bus = create_bus(settings)
        try:
            await publish_alert_events(
                bus, sessions, [history_id for _, history_id in changed if history_id is not None]
            )
        finally:
            await bus.close()
        return changed


@alert_app.command("ack")
@friendly_errors
def alert_ack(alert_ids: AlertIds, note: Note = None) -> None:
    """Acknowledge alerts: seen and being handled."""
    _change(alert_ids, "acknowledged", note)


@alert_app.command("resolve")
@friendly_errors
def alert_resolve(alert_ids: AlertIds, note: Note = None) -> None:
    """Resolve alerts: handled."""
    _change(alert_ids, "resolved", note)


@alert_app.command("dismiss")
@friendly_errors
def alert_dismiss(alert_ids: AlertIds, note: Note = None) -> None:
    """Dismiss alerts: not worth acting on (a false alarm, say)."""
    _change(alert_ids, "dismissed", note)
