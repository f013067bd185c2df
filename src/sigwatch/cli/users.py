"""``sigwatch user`` and ``sigwatch apikey``: who signs in, and the keys scripts use."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from sigwatch.cli.common import (
    cli_settings,
    console,
    errors,
    fail,
    friendly_errors,
    open_database,
    run,
)
from sigwatch.cli.owners import user_named
from sigwatch.config import Settings
from sigwatch.db.audit import record_audit, snapshot

user_app = typer.Typer(help="Users who sign in to the API.", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys for scripts and integrations.", no_args_is_help=True)

MIN_PASSWORD_CHARS = 8


def _read_password(from_stdin: bool, prompt: str) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt(prompt, hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_PASSWORD_CHARS:
        raise fail(f"the password needs at least {MIN_PASSWORD_CHARS} characters")
    return password


@user_app.command("create")
@friendly_errors
def user_create(
    name: Annotated[str, typer.Argument(help="Username.")],
    admin: Annotated[bool, typer.Option("--admin", help="Give the admin role.")] = False,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create a user; prompts for the password unless --password-stdin."""
    password = _read_password(password_stdin, "Password")
    settings = cli_settings()
    run(_user_create(settings, name, password, "admin" if admin else "user"))
    console.print(f"user [bold]{name}[/] created ({'admin' if admin else 'user'})")


async def _user_create(settings: Settings, name: str, password: str, role: str) -> None:
    from sigwatch.auth import hash_password
    from sigwatch.db.users import create_user

    async with open_database(settings) as sessions, sessions.begin() as session:
        user = await create_user(
            session, username=name, password_hash=hash_password(password), role=role
        )
        await record_audit(session, "cli", "create", "user", user.id, None, snapshot(user))


@user_app.command("passwd")
@friendly_errors
def user_passwd(
    name: Annotated[str, typer.Argument(help="Username.")],
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin", "--stdin", help="Read the new password from standard input."
        ),
    ] = False,
) -> None:
    """Set a user's password (prompts twice unless --stdin); their tokens stop working."""
    password = _read_password(password_stdin, "New password")
    settings = cli_settings()
    run(_user_passwd(settings, name, password))
    console.print(
        f"password of [bold]{name}[/] changed; its earlier tokens no longer work and any "
        "sign-in lock is lifted"
    )


async def _user_passwd(settings: Settings, name: str, password: str) -> None:
    from sigwatch.api.login_guard import unlock_account
    from sigwatch.auth import hash_password
    from sigwatch.db.users import update_user

    async with open_database(settings) as sessions, sessions.begin() as session:
        user = await user_named(session, name)
        before = snapshot(user)
        user = await update_user(session, user.id, {"password_hash": hash_password(password)})
        after = snapshot(user)
        await record_audit(session, "cli", "password_change", "user", user.id, before, after)
        await unlock_account(session, "cli", user)


@user_app.command("unlock")
@friendly_errors
def user_unlock(name: Annotated[str, typer.Argument(help="Username.")]) -> None:
    """Lift a user's sign-in lock after failed passwords, and forget those failures."""
    settings = cli_settings()
    unlocked = run(_user_unlock(settings, name))
    if unlocked:
        console.print(f"[bold]{name}[/] unlocked: password sign-in works again")
    else:
        console.print(f"[bold]{name}[/] was not locked and had no failed sign-ins to forget")


async def _user_unlock(settings: Settings, name: str) -> bool:
    from sigwatch.api.login_guard import unlock_account

    async with open_database(settings) as sessions, sessions.begin() as session:
        return await unlock_account(session, "cli", await user_named(session, name))


@apikey_app.command("create")
@friendly_errors
def apikey_create(
    user: Annotated[str, typer.Option("--user", help="Username the key acts as.")],
    name: Annotated[str, typer.Option("--name", help="A label to recognise the key by.")] = "",
) -> None:
    """Create an API key for a user; the key is printed once, as the last line."""
    settings = cli_settings()
    key = run(_apikey_create(settings, user, name))
    errors.print("API key created; it is shown only now. Send it in the X-API-Key header.")
    print(key)


async def _apikey_create(settings: Settings, username: str, name: str) -> str:
    from sigwatch.auth import generate_api_key
    from sigwatch.db.api_keys import create_api_key

    async with open_database(settings) as sessions, sessions.begin() as session:
        user = await user_named(session, username)
        new = generate_api_key()
        api_key = await create_api_key(
            session, user_id=user.id, name=name, prefix=new.prefix, key_hash=new.key_hash
        )
        await record_audit(session, "cli", "create", "api_key", api_key.id, None, snapshot(api_key))
    return new.key
