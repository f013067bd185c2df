"""The detection rules and the watchlist as one YAML document: overrides of the built-in rules."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, status
from fastapi.responses import PlainTextResponse

from sigwatch.alerts import watchlist as stored_watchlist
from sigwatch.api.alert_schemas import EventType, RuleOverrideIn, RuleOverrideOut
from sigwatch.api.deps import AdminPrincipal, CurrentPrincipal, SessionDep
from sigwatch.api.routes import API_PREFIX
from sigwatch.db import watchlist
from sigwatch.db.audit import record_audit
from sigwatch.detect import RuleOverride, dump_watchlist_yaml, load_watchlist_yaml

router = APIRouter(prefix=API_PREFIX, tags=["rules"])

Event = Annotated[EventType, Path(description="The event type whose rule to change.")]
#: Largest watchlist document accepted by PUT /watchlist.
MAX_WATCHLIST_CHARS = 1_000_000


@router.get("/rules")
async def list_rules(_principal: CurrentPrincipal, session: SessionDep) -> list[RuleOverrideOut]:
    """The overrides of the built-in event rules."""
    rows = await watchlist.list_rule_overrides(session)
    return [RuleOverrideOut(event=row.event, **row.config) for row in rows]


@router.put("/rules/{event}")
async def set_rule(
    event: Event, body: RuleOverrideIn, principal: AdminPrincipal, session: SessionDep
) -> RuleOverrideOut:
    """Replace the override of one event's rule: extra keywords, cancelling phrases, threshold."""
    rule = RuleOverride(
        enabled=body.enabled,
        keywords={tier: tuple(words) for tier, words in body.keywords.items()},
        cancels=tuple(body.cancels),
        min_confidence=body.min_confidence,
    )
    row, before = await watchlist.set_rule_override(
        session, event, stored_watchlist.rule_to_json(rule)
    )
    await record_audit(session, principal.user, "update", "rule", event, before, row.config)
    await session.commit()
    return RuleOverrideOut(event=row.event, **row.config)


@router.delete("/rules/{event}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_rule(event: Event, principal: AdminPrincipal, session: SessionDep) -> None:
    """Go back to the built-in rule of an event (admins: rules are shared)."""
    before = await watchlist.delete_rule_override(session, event)
    await record_audit(session, principal.user, "delete", "rule", event, before, None)
    await session.commit()


@router.get("/watchlist", response_class=PlainTextResponse)
async def export_watchlist(_principal: CurrentPrincipal, session: SessionDep) -> str:
    """The entities and rule overrides as one YAML document (the format of watchlist import)."""
    stored = await stored_watchlist.load_watchlist(session)
    return dump_watchlist_yaml(stored.watchlist)


@router.put("/watchlist")
async def import_watchlist(
    principal: AdminPrincipal,
    session: SessionDep,
    document: Annotated[
        str,
        Body(media_type="application/yaml", max_length=MAX_WATCHLIST_CHARS),
    ],
) -> dict[str, int]:
    """Import a watchlist YAML: entities added or updated by name, rule overrides replaced.

    Invalid YAML or an unknown field is a 422 naming the line; nothing is half-imported.
    """
    parsed = load_watchlist_yaml(document)
    added, updated, rules = await stored_watchlist.import_watchlist(
        session, parsed, actor=principal.user.username
    )
    await session.commit()
    return {"added": added, "updated": updated, "rules": rules}
