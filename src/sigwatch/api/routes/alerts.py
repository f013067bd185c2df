"""Alerts: list with filters, detail with evidence and history, bulk status change, export."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import StreamingResponse

from sigwatch.alerts import lifecycle
from sigwatch.api.alert_schemas import (
    AlertDetail,
    AlertOut,
    AlertStatus,
    EventType,
    EvidenceOut,
    HistoryOut,
    StatusChange,
    Urgency,
)
from sigwatch.api.deps import CurrentPrincipal, RuntimeDep, SessionDep
from sigwatch.api.openapi import error_responses
from sigwatch.api.routes import API_PREFIX
from sigwatch.api.schemas import MAX_INT64, PageOut, Text, UTCTime, page_out
from sigwatch.db import alerts
from sigwatch.db.alerts import AlertShown
from sigwatch.db.pagination import Page
from sigwatch.live.events import publish_alert_events

router = APIRouter(prefix=f"{API_PREFIX}/alerts", tags=["alerts"])

AlertId = Annotated[int, Path(ge=1, le=MAX_INT64)]
EXPORT_FIELDS = (
    "id",
    "entity",
    "event",
    "status",
    "confidence",
    "urgency",
    "event_time",
    "title",
    "first_seen_at",
    "first_source_id",
    "lead_time_s",
    "source_count",
    "evidence_count",
    "created_at",
)
EXPORT_PAGE = 500


def alert_filters(
    entity: Annotated[Text | None, Query(max_length=200)] = None,
    tag: Annotated[Text | None, Query(max_length=200)] = None,
    event: EventType | None = None,
    min_confidence: Annotated[float | None, Query(ge=0, le=1)] = None,
    urgency: Urgency | None = None,
    status: AlertStatus | None = None,
    since: Annotated[UTCTime | None, Query(description="Created at or after.")] = None,
    q: Annotated[Text | None, Query(min_length=1, max_length=500)] = None,
) -> dict[str, Any]:
    """The filters shared by the list and the export."""
    return {
        "entity": entity,
        "tag": tag,
        "event": event,
        "min_confidence": min_confidence,
        "urgency": urgency,
        "status": status,
        "since": since,
        "q": q,
    }


Filters = Annotated[dict[str, Any], Depends(alert_filters)]


@router.get("")
async def list_alerts(
    principal: CurrentPrincipal,
    session: SessionDep,
    filters: Filters,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> PageOut[AlertOut]:
    """Alerts newest first; a user sees each alert as their own sources' evidence tells it."""
    page = await alerts.list_alerts(
        session, viewer_id=principal.owner_filter, cursor=cursor, limit=limit, **filters
    )
    return page_out(page, AlertOut.model_validate)


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The alerts as JSON lines, or as CSV with format=csv.",
            "content": {"application/x-ndjson": {}, "text/csv": {}},
        }
    },
)
async def export_alerts(
    principal: CurrentPrincipal,
    runtime: RuntimeDep,
    filters: Filters,
    format: Literal["csv", "jsonl"] = "jsonl",
) -> StreamingResponse:
    """Every matching alert as CSV or JSONL, streamed page by page."""
    viewer = principal.owner_filter

    async def page_after(cursor: str | None) -> Page[AlertShown]:
        async with runtime.sessions() as session:
            return await alerts.list_alerts(
                session, viewer_id=viewer, cursor=cursor, limit=EXPORT_PAGE, **filters
            )

    # Read before the response starts, so a filter the database refuses (a q without a word)
    # is a 422, not a stream cut short after its 200.
    first = await page_after(None)

    async def rows() -> AsyncIterator[str]:
        page = first
        if format == "csv":
            yield _csv_line(EXPORT_FIELDS)
        while True:
            for alert in page.items:
                record = _export_record(alert)
                if format == "csv":
                    yield _csv_line([record[name] for name in EXPORT_FIELDS])
                else:
                    yield json.dumps(record, ensure_ascii=False) + "\n"
            if page.next_cursor is None:
                return
            page = await page_after(page.next_cursor)

    media = "text/csv" if format == "csv" else "application/x-ndjson"
    return StreamingResponse(
        rows(),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="alerts.{format}"'},
    )


def _export_record(alert: AlertShown) -> dict[str, Any]:
    record = {name: getattr(alert, name) for name in EXPORT_FIELDS}
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in record.items()}


def _csv_line(values: Any) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(["" if v is None else v for v in values])
    return buffer.getvalue()


@router.post("/status", responses=error_responses(404, 409))
async def change_status(
    body: StatusChange, principal: CurrentPrincipal, session: SessionDep, runtime: RuntimeDep
) -> list[AlertOut]:
    """Acknowledge, resolve, dismiss or reopen alerts; all change or none (409 on a bad move)."""
    changed = await lifecycle.change_status(
        session,
        body.ids,
        body.status,
        viewer_id=principal.owner_filter,
        actor_id=principal.user.id,
        actor=principal.user.username,
        note=body.note,
    )
    await session.commit()
    history = [history_id for _, history_id in changed if history_id is not None]
    await publish_alert_events(runtime.bus, runtime.sessions, history)
    return [AlertOut.model_validate(alert) for alert, _history_id in changed]


@router.get("/{alert_id}")
async def get_alert(
    alert_id: AlertId, principal: CurrentPrincipal, session: SessionDep
) -> AlertDetail:
    """One alert with its evidence (matched spans and feature contributions) and history."""
    alert = await alerts.get_alert(session, alert_id, viewer_id=principal.owner_filter)
    evidence = await alerts.alert_evidence(session, alert_id, viewer_id=principal.owner_filter)
    history = await alerts.alert_history(session, alert_id, viewer_id=principal.owner_filter)
    return AlertDetail.model_validate(
        {
            **AlertOut.model_validate(alert).model_dump(),
            "evidence": [
                EvidenceOut(
                    post_id=item.post_id,
                    source_id=item.source_id,
                    published_at=item.published_at,
                    confidence=item.confidence,
                    urgency=item.urgency,
                    event_time=item.event_time,
                    features=item.features,
                    spans=item.spans,
                    title=post.title,
                    text=post.text,
                    url=post.url,
                    author=post.author,
                    sentiment=post.sentiment,
                )
                for item, post in evidence
            ],
            "history": [HistoryOut.model_validate(change) for change in history],
        }
    )
