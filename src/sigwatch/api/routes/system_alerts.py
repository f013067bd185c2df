"""System alerts: the sources' freshness alarms, as their owners (and admins) may see them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from sigwatch.api.alert_schemas import SystemAlertCondition, SystemAlertOut, SystemAlertState
from sigwatch.api.deps import CurrentPrincipal, SessionDep
from sigwatch.api.openapi import error_responses
from sigwatch.api.routes import API_PREFIX
from sigwatch.api.schemas import MAX_INT32, PageOut, page_out
from sigwatch.db import system_alerts
from sigwatch.db.system_alerts import SystemAlertShown

router = APIRouter(prefix=f"{API_PREFIX}/system-alerts", tags=["system alerts"])

SystemAlertId = Annotated[int, Path(ge=1, le=MAX_INT32)]


def _out(shown: SystemAlertShown) -> SystemAlertOut:
    fields = {
        name: getattr(shown.alert, name)
        for name in SystemAlertOut.model_fields
        if name != "source_name"
    }
    return SystemAlertOut.model_validate({**fields, "source_name": shown.source_name})


@router.get("")
async def list_system_alerts(
    principal: CurrentPrincipal,
    session: SessionDep,
    state: SystemAlertState | None = None,
    condition: SystemAlertCondition | None = None,
    source_id: Annotated[int | None, Query(ge=1, le=MAX_INT32)] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> PageOut[SystemAlertOut]:
    """Alarms of the sources you can see (every source for admins), newest first."""
    page = await system_alerts.list_system_alerts(
        session,
        viewer_id=principal.owner_filter,
        state=state,
        condition=condition,
        source_id=source_id,
        cursor=cursor,
        limit=limit,
    )
    return page_out(page, _out)


@router.get("/{system_alert_id}", responses=error_responses(404))
async def get_system_alert(
    system_alert_id: SystemAlertId, principal: CurrentPrincipal, session: SessionDep
) -> SystemAlertOut:
    """One alarm, if you can see its source."""
    shown = await system_alerts.get_system_alert(
        session, system_alert_id, viewer_id=principal.owner_filter
    )
    return _out(shown)
