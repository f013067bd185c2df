"""Structured logging, configured once at process start: JSON off a terminal, readable on one.

No secret is ever written, at any level. Three layers hold that:

- every structlog event, and every stdlib record rendered through sigwatch's handler, passes
  :func:`redact_secrets`: values of keys named like secrets are masked, and every string is
  scrubbed by :func:`redact_text` (secret query parameters, URL passwords, bearer tokens, JWTs,
  API keys, webhook secrets, password hashes);
- the loggers of the libraries that write URLs or headers (uvicorn's WebSocket lines,
  websockets' handshake) carry :class:`RedactingFilter`, so any other handler (a test's capture,
  an operator's own) sees the redacted record too;
- libraries that dump data at debug level (SQLAlchemy's result rows, aiosqlite's call arguments)
  are held at info; SQL parameters are hidden by the engine itself (:mod:`sigwatch.db.engine`).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import unquote

import structlog

#: What a masked value becomes.
MASK = "****"

#: Words that make a query parameter, a log key or a header a secret when one of the name's
#: parts (split at ``_``, ``-`` and ``.``) is one of them: ``api_key``, ``hub.secret``,
#: ``X-Api-Key``, ``refresh_token``, ``password_hash``, ``sig`` … The values of every such query
#: parameter are masked in every log line (docs/api.md, "Secrets in logs").
SECRET_NAME_PARTS = frozenset(
    {
        "apikey",
        "auth",
        "authorization",
        "bearer",
        "cookie",
        "credential",
        "credentials",
        "jwt",
        "key",
        "passphrase",
        "passwd",
        "password",
        "pwd",
        "secret",
        "session",
        "sessionid",
        "sig",
        "signature",
        "token",
    }
)
#: Names that hold a secret although no part of them is a secret word (``code`` of OAuth).
_SECRET_NAMES = frozenset({"pass", "hash", "code"})
#: Name parts that make a log key harmless although another part is a secret word: the *kind* of
#: a token or the *name* of a key is not the token or the key.
_HARMLESS_KEY_PARTS = frozenset({"type", "id", "ids", "prefix", "count", "ttl", "s", "kind"})

_NAME_SPLIT = re.compile(r"[_.\-\s\[\]]+")
#: ``?name=value`` or ``&name=value`` in a URL or a query string.
_QUERY_PARAMETER = re.compile(
    r"(?P<lead>[?&;])(?P<name>[^=&#?;\s]{1,100})=(?P<value>[^&#;\s\"'<>]*)"
)
#: ``scheme://user:password@host``: the password part.
_URL_PASSWORD = re.compile(r"(?P<lead>[a-zA-Z][a-zA-Z0-9+.\-]*://[^/:@\s\"']*:)[^@/\s\"']+(?=@)")
#: ``Bearer <credentials>`` and ``Basic <credentials>`` wherever they appear.
_AUTH_SCHEME = re.compile(r"(?P<lead>\b(?:Bearer|Basic|Token)\s+)[A-Za-z0-9._~+/=\-]{4,}", re.I)
#: ``password=…``, ``"api_key": "…"``, ``x-api-key: …`` in free text (form bodies, header dumps).
_NAMED_VALUE = re.compile(
    r"(?P<lead>(?P<quote>[\"']?)\b(?P<name>[A-Za-z][A-Za-z0-9_.\-]{0,60})(?P=quote)\s*[:=]\s*)"
    r"(?P<open>[\"']?)(?P<value>[^\s\"',;&}\]]+)"
)
#: A bound parameter in SQL text (``key_hash = $1``): the statement, not a value.
_SQL_PLACEHOLDER = re.compile(r"\?|\$\d+|:\w+|%\(\w+\)s|%s")
#: Credentials recognisable by their shape: JWTs, sigwatch API keys, Standard Webhooks secrets,
#: argon2 password hashes.
_SHAPED_SECRETS = re.compile(
    r"\beyJ[A-Za-z0-9_\-]{6,}\.[A-Za-z0-9_\-]{6,}\.[A-Za-z0-9_\-]*"
    r"|\bsw_[A-Za-z0-9_\-]{16,}"
    r"|\bwhsec_[A-Za-z0-9+/=]{8,}"
    r"|\$argon2(?:id|i|d)\$[^\s\"')]+"
)


def is_secret_name(name: str) -> bool:
    """Whether a query parameter, header or log key of this name holds a secret."""
    lowered = unquote(name).lower()
    if lowered in _SECRET_NAMES:
        return True
    parts = [part for part in _NAME_SPLIT.split(lowered) if part]
    return any(part in SECRET_NAME_PARTS or part.replace("-", "") == "apikey" for part in parts)


def _is_secret_key(name: str) -> bool:
    parts = {part for part in _NAME_SPLIT.split(name.lower()) if part}
    return is_secret_name(name) and not parts & _HARMLESS_KEY_PARTS


def redact_text(text: str) -> str:
    """``text`` with every secret it visibly carries replaced by ``****``.

    Masks the values of secret query parameters (any URL, any query string), the password of a
    URL's userinfo, credentials after ``Bearer``/``Basic``, secret-named ``name=value`` and
    ``name: value`` pairs, and credentials recognisable by their shape.
    """
    if not text:
        return text
    text = _SHAPED_SECRETS.sub(MASK, text)
    text = _AUTH_SCHEME.sub(lambda m: m["lead"] + MASK, text)
    text = _URL_PASSWORD.sub(lambda m: m["lead"] + MASK, text)
    text = _QUERY_PARAMETER.sub(_mask_query_parameter, text)
    return _NAMED_VALUE.sub(_mask_named_value, text)


def _mask_query_parameter(match: re.Match[str]) -> str:
    if not match["value"] or not is_secret_name(match["name"]):
        return match[0]
    return f"{match['lead']}{match['name']}={MASK}"


def _mask_named_value(match: re.Match[str]) -> str:
    value = match["value"]
    if value == MASK or _SQL_PLACEHOLDER.fullmatch(value) or not _is_secret_key(match["name"]):
        return match[0]
    return f"{match['lead']}{match['open']}{MASK}"


def redact_value(key: str, value: Any) -> Any:
    """``value`` as it may be logged under ``key``: masked, scrubbed, or walked into."""
    if value is None or isinstance(value, bool):
        return value
    if _is_secret_key(key):
        return MASK
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, int | float):
        return value
    if isinstance(value, Mapping):
        return {k: redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value("", item) for item in value]
    # Rendered by repr further on; scrubbed here, in the form it would be written.
    return redact_text(repr(value))


def redact_secrets(
    _logger: Any, _method: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    """structlog processor: mask secret-named keys and scrub every string of the event."""
    for key, value in list(event_dict.items()):
        if key in ("exc_info", "stack_info", "_record", "_from_structlog"):
            continue
        if key == "event":
            event_dict[key] = redact_text(value) if isinstance(value, str) else value
        else:
            event_dict[key] = redact_value(key, value)
    return event_dict


class RedactingFilter(logging.Filter):
    """Rewrite a stdlib record's message with :func:`redact_text`; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Scrub the message and each of its arguments in place, keeping their shape.

        Arguments stay a tuple of the same length, so a formatter that unpacks them (uvicorn's
        access formatter reads five) still works.
        """
        if isinstance(record.msg, str):
            record.msg = redact_text(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redact_argument(arg) for arg in record.args)
        elif isinstance(record.args, Mapping):
            record.args = {key: redact_value(str(key), arg) for key, arg in record.args.items()}
        return True


def _redact_argument(argument: object) -> object:
    if argument is None or isinstance(argument, int | float):
        return argument
    text = argument.decode("latin-1") if isinstance(argument, bytes) else str(argument)
    redacted = redact_text(text)
    # Unchanged arguments keep their type, so %d, %r and friends format them as before.
    return argument if redacted == text else redacted


#: The filter shared by every logger and handler sigwatch installs it on.
REDACTING_FILTER = RedactingFilter()
#: Loggers whose own records carry URLs or headers: uvicorn's WebSocket lines hold the query
#: string (``?token=``), websockets' debug handshake holds every header.
_URL_LOGGERS = (
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "uvicorn.asgi",
    "websockets",
    "websockets.server",
    "websockets.client",
    "sqlalchemy.engine.Engine",
)
#: Libraries that write query results or call arguments at debug level: held at info at least.
_DATA_DUMPING_LOGGERS = ("sqlalchemy.engine", "aiosqlite", "asyncpg", "hpack", "httpcore")


def configure_logging(
    level: str = "info", fmt: Literal["auto", "json", "console"] = "auto"
) -> None:
    """Route structlog and stdlib logging to stderr in the chosen format, secrets masked."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(),
            # Rich tracebacks print each frame's local variables: passwords among them.
            exception_formatter=structlog.dev.plain_traceback,
        )
    )
    # Tracebacks become text before redaction, so an exception message is scrubbed too.
    finishing: list[structlog.types.Processor] = [
        structlog.processors.format_exc_info,
        redact_secrets,
        renderer,
    ]
    numeric = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=[*shared, structlog.processors.StackInfoRenderer(), *finishing],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=_StderrLogger,
        # No caching: module-level loggers then follow a later reconfiguration (tests, reloads).
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *finishing],
        )
    )
    handler.addFilter(REDACTING_FILTER)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    for name in _URL_LOGGERS:
        logging.getLogger(name).addFilter(REDACTING_FILTER)  # once: addFilter skips repeats
    for name in _DATA_DUMPING_LOGGERS:
        logging.getLogger(name).setLevel(max(numeric, logging.INFO))
    # SQLAlchemy writes every statement at INFO (as echo does): only a debug session wants that.
    logging.getLogger("sqlalchemy.engine").setLevel(
        logging.INFO if numeric <= logging.DEBUG else logging.WARNING
    )
    # httpx logs every request at INFO with the full URL; sigwatch logs its own, redacted.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    # Alembic narrates every migration step at INFO; sigwatch reports the outcome itself.
    logging.getLogger("alembic").setLevel(logging.WARNING)


class _StderrLogger:
    """Writes each rendered line to whatever ``sys.stderr`` is at that moment.

    structlog's PrintLogger keeps the stream it was built with; a test harness or a daemon that
    swaps stderr would then write to a closed file.
    """

    def __init__(self, *_args: object) -> None:
        pass

    def msg(self, message: str) -> None:
        sys.stderr.write(message + "\n")
        sys.stderr.flush()

    log = debug = info = warning = warn = error = critical = exception = fatal = msg
