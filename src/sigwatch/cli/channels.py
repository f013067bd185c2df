"""``sigwatch channel``: where notifications go — add any kind, list, send a test, remove.

A channel belongs to a user (``--user``, by default the one admin). Its secrets are taken from
standard input or a hidden prompt, never from the command line, are sealed in the database and
are masked in every listing; a secret sigwatch generates (a webhook's signing secret) is printed
once, when the channel is made.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from sigwatch.cli.common import (
    USAGE_ERROR,
    cli_settings,
    console,
    errors,
    fail,
    friendly_errors,
    open_database,
    run,
)
from sigwatch.cli.options import describe_kinds, parse_settings
from sigwatch.cli.owners import all_usernames, owner_for
from sigwatch.config import Settings, ensure_secret_key
from sigwatch.db.audit import record_audit, snapshot
from sigwatch.db.models import Channel
from sigwatch.delivery.channels.registry import CHANNEL_KINDS

channel_app = typer.Typer(help="Channels that notifications are sent to.", no_args_is_help=True)

ChannelId = Annotated[int, typer.Argument(help="Channel id, as `sigwatch channel list` shows it.")]

_ADD_HELP = (
    "Add a channel of any kind, its options given as --set KEY=VALUE.\n\n"
    "Secret options are never read from the command line: give --set KEY=- to read one line "
    "of standard input, or leave a required one out to be asked. Secrets sigwatch generates "
    "(a webhook's signing secret) are printed once, now.\n\n"
    + describe_kinds({name: kind.Options for name, kind in CHANNEL_KINDS.items()})
)


def _audited(channel: Channel, secret_key: str) -> dict[str, Any]:
    from sigwatch.manage.channels import shown_config

    return {**snapshot(channel), "config": shown_config(channel, secret_key)}


@channel_app.command("add", help=_ADD_HELP)
@friendly_errors
def channel_add(
    kind: Annotated[
        str, typer.Argument(metavar="KIND", help=f"One of: {', '.join(sorted(CHANNEL_KINDS))}.")
    ],
    name: Annotated[str, typer.Option("--name", help="Display name.")],
    assignments: Annotated[
        list[str] | None,
        typer.Option(
            "--set", metavar="KEY=VALUE", help="An option of the kind; repeat for several."
        ),
    ] = None,
    rate_limit: Annotated[
        int | None,
        typer.Option("--rate-limit", min=1, help="Most messages a minute; default no limit."),
    ] = None,
    user: Annotated[
        str | None, typer.Option("--user", help="Owner; default the only admin.")
    ] = None,
) -> None:
    factory = CHANNEL_KINDS.get(kind)
    if factory is None:
        raise fail(
            f"unknown channel kind {kind!r}: use one of {', '.join(sorted(CHANNEL_KINDS))}",
            USAGE_ERROR,
        )
    config = parse_settings(kind, factory.Options, assignments or [], prompt_missing_secrets=True)
    settings = cli_settings()
    channel_id, owner, generated = run(_channel_add(settings, kind, name, config, rate_limit, user))
    console.print(f"channel {channel_id} added for {owner}: {name}", highlight=False)
    for field, value in generated.items():
        errors.print(f"generated {field} (shown only now; keep it):", highlight=False)
        console.print(value, highlight=False, markup=False, soft_wrap=True)


async def _channel_add(
    settings: Settings,
    kind: str,
    name: str,
    config: dict[str, Any],
    rate_limit: int | None,
    username: str | None,
) -> tuple[int, str, dict[str, str]]:
    from sigwatch.manage.channels import create_channel

    secret_key = ensure_secret_key(settings)
    async with open_database(settings) as sessions, sessions.begin() as session:
        owner = await owner_for(session, username)
        channel, generated = await create_channel(
            session,
            owner_id=owner.id,
            kind=kind,
            name=name,
            config=config,
            secret_key=secret_key,
            lease_s=settings.lease_s,
            rate_limit_per_min=rate_limit,
        )
        after = _audited(channel, secret_key)
        await record_audit(session, "cli", "create", "channel", channel.id, None, after)
        return channel.id, owner.username, generated


@channel_app.command("list")
@friendly_errors
def channel_list() -> None:
    """List every user's channels, secrets masked."""
    settings = cli_settings()
    shown = run(_channel_list(settings))
    table = Table("id", "owner", "kind", "name", "enabled", "rate limit", "options")
    for channel, owner, config in shown:
        table.add_row(
            str(channel.id),
            owner,
            channel.kind,
            channel.name,
            "yes" if channel.enabled else "no",
            "none" if channel.rate_limit_per_min is None else f"{channel.rate_limit_per_min}/min",
            ", ".join(f"{k}={v}" for k, v in config.items()),
        )
    console.print(table)
    console.print(f"{len(shown)} channels")


async def _channel_list(settings: Settings) -> list[tuple[Channel, str, dict[str, Any]]]:
    from sigwatch.db.channels import list_channels
    from sigwatch.manage.channels import shown_config

    secret_key = ensure_secret_key(settings)
    async with open_database(settings) as sessions, sessions() as session:
        names = await all_usernames(session)
        found: list[Channel] = []
        cursor: str | None = None
        while True:
            page = await list_channels(session, owner_id=None, cursor=cursor, limit=200)
            found.extend(page.items)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        return [
            (
                channel,
                names.get(channel.owner_id, str(channel.owner_id)),
                shown_config(channel, secret_key),
            )
            for channel in found
        ]


@channel_app.command("test")
@friendly_errors
def channel_test(channel_id: ChannelId) -> None:
    """Send a test message through a channel now, enabled or not; exit 1 if it failed."""
    settings = cli_settings()
    ok, status_code, detail = run(_channel_test(settings, channel_id))
    answer = f" (HTTP {status_code})" if status_code is not None else ""
    if ok:
        console.print(f"channel {channel_id}: test message sent{answer}: {detail}", highlight=False)
        return
    raise fail(
        f"channel {channel_id}: the test message was not delivered{answer}: {detail}. Fix the "
        f"channel's options, or the receiver, and run `sigwatch channel test {channel_id}` again"
    )


async def _channel_test(settings: Settings, channel_id: int) -> tuple[bool, int | None, str]:
    from sigwatch.db.channels import get_channel
    from sigwatch.delivery.compose import channel_test_message
    from sigwatch.delivery.send import send_to_channel
    from sigwatch.errors import ConfigError, DeliveryError
    from sigwatch.net.client import OutboundClient

    secret_key = ensure_secret_key(settings)
    async with open_database(settings) as sessions:
        async with sessions() as session:
            channel = await get_channel(session, channel_id, owner_id=None)
        # No database connection is held while the receiver answers.
        try:
            async with OutboundClient.from_settings(settings) as client:
                receipt = await send_to_channel(
                    channel,
                    channel_test_message(channel.id),
                    secret_key=secret_key,
                    client=client,
                )
        except (DeliveryError, ConfigError) as exc:
            # ConfigError: the stored secrets cannot be opened (the secret key changed).
            result: tuple[bool, int | None, str] = (False, None, str(exc))
        else:
            result = (True, receipt.status_code, receipt.detail)
        async with sessions.begin() as session:
            outcome = {"ok": result[0], "status_code": result[1], "detail": result[2]}
            await record_audit(session, "cli", "test", "channel", channel_id, None, outcome)
        return result


@channel_app.command("remove")
@friendly_errors
def channel_remove(
    channel_id: ChannelId,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Remove a channel with its deliveries; subscriptions stop sending to it."""
    if not yes:
        typer.confirm(f"remove channel {channel_id}?", abort=True, err=True)
    settings = cli_settings()
    name = run(_channel_remove(settings, channel_id))
    console.print(f"channel {channel_id} removed: {name}", highlight=False)


async def _channel_remove(settings: Settings, channel_id: int) -> str:
    from sigwatch.db.channels import delete_channel, get_channel

    secret_key = ensure_secret_key(settings)
    async with open_database(settings) as sessions, sessions.begin() as session:
        before = _audited(await get_channel(session, channel_id, owner_id=None), secret_key)
        channel = await delete_channel(session, channel_id, owner_id=None)
        await record_audit(session, "cli", "delete", "channel", channel_id, before, None)
        return channel.name
