"""Any JSON API: JMESPath expressions pick the items out of the answer and each post's fields.

``items`` selects the list of items from the answer; ``id``, ``title``, ``text``, ``link`` and
``date`` are evaluated on each item. Every expression is compiled once, when the options are
validated, so a mistyped one is refused when the source is added, not at its first poll. A
``link`` may also be a template (``https://example.com/news/{slug}``), since JMESPath cannot
build strings. A config may instead name a preset (:mod:`sigwatch.sources.presets`), which the
options model expands into these options.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import quote, urljoin, urlsplit

import jmespath
from jmespath import exceptions as jmespath_errors
from jmespath.functions import Functions
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    PlainSerializer,
    PlainValidator,
    SecretStr,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from sigwatch.errors import FetchError, InvalidInput, ParseError
from sigwatch.net.client import (
    REDIRECT_STATUSES,
    FetchedResponse,
    OutboundClient,
    redact_url,
    status_error,
    url_problem,
)
from sigwatch.net.urls import normalised_url
from sigwatch.sources.base import CollectedPost, FetchResult, Platforms
from sigwatch.sources.presets import expand_preset_config, presets_help
from sigwatch.sources.text import absolutize_urls, html_to_text, sanitize_html

MAX_URL_CHARS = 2048
MAX_EXPRESSION_CHARS = 1000
_FUNCTIONS: dict[str, Any] = dict(Functions().FUNCTION_TABLE)
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_FIELD_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
#: Headers the source sets itself (conditional GET) or that only the HTTP client may set.
_RESERVED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "if-none-match",
        "if-modified-since",
    }
)
#: Numbers at least this large are epoch milliseconds: as seconds they would be past year 5000,
#: as milliseconds they are after March 1973.
_EPOCH_MS_FROM = 100_000_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: A body longer than this enters the origin as its hash, keeping the origin short to index.
_BODY_IN_ORIGIN_CHARS = 200
_SHOWN_INDEXES = 5


@dataclass(frozen=True, slots=True)
class Expression:
    """A JMESPath expression compiled once, at validation, with the text it was written as."""

    source: str
    compiled: Any

    def search(self, value: Any) -> Any:
        """The expression's value on ``value``; None when it selects nothing or fails there."""
        try:
            return self.compiled.search(value)
        except jmespath_errors.JMESPathError:
            # A function given the wrong type on one item (abs of a string) is that item's
            # missing value, not a broken source.
            return None


@dataclass(frozen=True, slots=True)
class LinkTemplate:
    """A URL with ``{field}`` placeholders filled from the item, each a compiled field path."""

    source: str
    fields: tuple[tuple[str, Expression], ...]

    def render(self, item: Any) -> str | None:
        """The link for ``item``, each value percent-encoded; None when a field is missing."""
        link = self.source
        for placeholder, expression in self.fields:
            value = _scalar_text(expression.search(item))
            if value is None:
                return None
            link = link.replace("{" + placeholder + "}", quote(value, safe=""))
        return link


def compile_expression(value: Any) -> Expression:
    """``value`` compiled as JMESPath; ValueError saying what is wrong with it."""
    if isinstance(value, Expression):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a JMESPath expression written as a string, e.g. data.items")
    text = value.strip()
    if not text:
        raise ValueError("must not be blank: leave the option out instead")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ValueError(f"must be at most {MAX_EXPRESSION_CHARS} characters")
    try:
        compiled = jmespath.compile(text)
    except jmespath_errors.JMESPathError as exc:
        raise ValueError(f"is not a valid JMESPath expression: {_syntax_problem(exc)}") from None
    problem = _function_problem(compiled.parsed)
    if problem is not None:
        raise ValueError(problem)
    return Expression(text, compiled)


def compile_link(value: Any) -> Expression | LinkTemplate:
    """A link template when ``value`` starts with http:// or https://, else an expression."""
    if isinstance(value, Expression | LinkTemplate):
        return value
    if not isinstance(value, str) or not value.strip().lower().startswith(("http://", "https://")):
        return compile_expression(value)
    template = value.strip()
    if len(template) > MAX_URL_CHARS:
        raise ValueError(f"must be at most {MAX_URL_CHARS} characters")
    placeholders = _PLACEHOLDER.findall(template)
    if "{" in _PLACEHOLDER.sub("", template) or "}" in _PLACEHOLDER.sub("", template):
        raise ValueError("has a { or } that is not part of a {field} placeholder: write %7B, %7D")
    bad = [name for name in placeholders if not _FIELD_PATH.fullmatch(name)]
    if bad:
        raise ValueError(
            f"placeholder {{{bad[0]}}} is not a field name: use {{name}} or {{a.b}}, letters, "
            "digits and _ only; for anything else make link an expression"
        )
    if not placeholders:
        raise ValueError(
            "is a URL without a {field} placeholder, so every item would get the same link: "
            "add one, e.g. https://example.com/news/{id}"
        )
    problem = url_problem(_PLACEHOLDER.sub("x", template))
    if problem is not None:
        raise ValueError(problem)
    fields = tuple((name, compile_expression(name)) for name in dict.fromkeys(placeholders))
    return LinkTemplate(template, fields)


def _source_of(value: Expression | LinkTemplate) -> str:
    return value.source


_AS_TEXT = PlainSerializer(_source_of, return_type=str)
JmesPath = Annotated[
    Expression, PlainValidator(compile_expression), _AS_TEXT, WithJsonSchema({"type": "string"})
]
Link = Annotated[
    Expression | LinkTemplate,
    PlainValidator(compile_link),
    _AS_TEXT,
    WithJsonSchema({"type": "string"}),
]


class JsonOptions(BaseModel):
    """Options of a JSON API source."""

    model_config = ConfigDict(extra="forbid")

    preset: str | None = Field(
        None,
        exclude=True,
        description=(
            "Start from a preset instead of writing the options: give its name and its "
            "parameters beside it; options given as well override the preset's. The preset "
            "is expanded when the source is added: the source keeps the json options it gives. "
            f"Presets: {presets_help()}"
        ),
    )
    url: str = Field(description="The API's URL, http:// or https://.")
    items: JmesPath = Field(
        description="JMESPath expression selecting the list of items from the answer, e.g. "
        "`data.catalogs[].articles[]`."
    )
    id: JmesPath | None = Field(
        None,
        description="JMESPath on each item: its stable id (stringified). Left out: the link, "
        "else a hash of the item.",
    )
    title: JmesPath | None = Field(None, description="JMESPath on each item: its title.")
    text: JmesPath | None = Field(
        None,
        description="JMESPath on each item: its text (HTML is stripped). Left out: the title.",
    )
    link: Link | None = Field(
        None,
        description="JMESPath on each item giving its URL (a relative one is resolved against "
        "url), or a URL template starting with http(s):// whose {field} placeholders are "
        "filled from the item, e.g. `https://example.com/news/{slug}`.",
    )
    date: JmesPath | None = Field(
        None,
        description="JMESPath on each item: when it was published, as epoch seconds, epoch "
        "milliseconds, ISO 8601 or RFC 2822.",
    )
    headers: dict[str, SecretStr] | None = Field(
        None,
        description="Headers sent with every request, name to value, e.g. "
        '`{"X-Api-Key": "<key>"}`; the values are secrets.',
    )
    method: Literal["GET", "POST"] = Field("GET", description="GET, or POST to send body.")
    body: JsonValue | None = Field(
        None, description="JSON sent as the request body; only with method POST."
    )

    @model_validator(mode="before")
    @classmethod
    def _expand_preset(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("preset") is None:
            return data
        try:
            return expand_preset_config(data, cls.model_fields)
        except InvalidInput as exc:
            raise _located(exc.field, exc.message) from None

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        value = value.strip()
        if len(value) > MAX_URL_CHARS:
            raise ValueError(f"must be at most {MAX_URL_CHARS} characters")
        parts = urlsplit(value)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ValueError(
                "must be an http:// or https:// URL, e.g. https://api.example.com/v1/news"
            )
        problem = url_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("method", mode="before")
    @classmethod
    def _upper_method(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("headers")
    @classmethod
    def _check_headers(cls, value: dict[str, SecretStr] | None) -> dict[str, SecretStr] | None:
        if not value:
            return None
        checked: dict[str, SecretStr] = {}
        for name, secret in value.items():
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a header name: letters, digits and - only")
            if name.lower() in _RESERVED_HEADERS:
                raise ValueError(f"{name} is set by sigwatch itself: leave it out")
            header = secret.get_secret_value().strip()
            if not header:
                raise ValueError(f"the value of {name} must not be blank: leave {name} out")
            if not all(0x20 <= ord(char) < 0x7F for char in header):
                raise ValueError(
                    f"the value of {name} must be one line of printable ASCII characters"
                )
            checked[name] = SecretStr(header)
        return checked

    @field_validator("body")
    @classmethod
    def _body_only_with_post(cls, value: JsonValue | None, info: ValidationInfo) -> Any:
        if value is not None and info.data.get("method", "GET") != "POST":
            raise ValueError("is sent only with method POST: set method to POST, or leave it out")
        return value

    @model_validator(mode="after")
    def _title_or_text(self) -> JsonOptions:
        if self.title is None and self.text is None:
            raise _located(
                "title", "give title or text (or both): a post without either says nothing"
            )
        return self

    def origin(self) -> str:
        """Method, normalised URL and items expression (and the body, when POST): the same
        API asked the same way for the same items is one source."""
        parts = [self.method, normalised_url(self.url), self.items.source]
        if self.method == "POST" and self.body is not None:
            body = json.dumps(self.body, sort_keys=True, separators=(",", ":"))
            if len(body) > _BODY_IN_ORIGIN_CHARS:
                body = "sha256:" + hashlib.sha256(body.encode()).hexdigest()
            parts.append(body)
        return " ".join(parts)


class JsonApiSource:
    """Collects the items of any JSON API, one post per item, as JMESPath expressions say."""

    kind: ClassVar[str] = "json"
    Options: ClassVar[type[BaseModel]] = JsonOptions

    def __init__(
        self, options: JsonOptions, client: OutboundClient, platforms: Platforms | None = None
    ) -> None:
        self.options = options
        self.client = client

    async def fetch(self, state: dict[str, Any]) -> FetchResult:
        """Fetch the answer (conditionally, for GET) and turn its items into posts.

        ParseError when the answer is not JSON or ``items`` gives no list; items that give no
        usable id or text are skipped with a warning.
        """
        if self.options.method == "POST":
            response = await self._post()
            new_state = dict(state)
        else:
            response = await self.client.get(
                self.options.url,
                headers=self._get_headers(state),
                secret_headers=self.options.headers or (),
            )
            new_state = _next_state(state, response)
            if response.status == 304:
                return FetchResult(posts=[], state=new_state, not_modified=True)
        items = self._items(decode_json(response))
        posts, warnings = items_to_posts(self.options, items, response.url)
        return FetchResult(posts=posts, state=new_state, warnings=warnings)

    def _get_headers(self, state: dict[str, Any]) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if state.get("etag"):
            headers["If-None-Match"] = str(state["etag"])
        if state.get("last_modified"):
            headers["If-Modified-Since"] = str(state["last_modified"])
        return _with_custom_headers(headers, self.options.headers)

    async def _post(self) -> FetchedResponse:
        """POST the body; a non-2xx answer raises what ``get`` would raise for it."""
        headers = {"Accept": "application/json"}
        content = b""
        if self.options.body is not None:
            headers["Content-Type"] = "application/json"
            content = json.dumps(self.options.body, separators=(",", ":")).encode()
        response = await self.client.post(
            self.options.url,
            content=content,
            headers=_with_custom_headers(headers, self.options.headers),
        )
        if 200 <= response.status < 300:
            return response
        shown = redact_url(self.options.url)
        if response.status in REDIRECT_STATUSES:
            target = redact_url(response.headers.get("location", "")) or "no Location"
            raise FetchError(
                f"POST to {shown} answered HTTP {response.status}, a redirect to {target}: "
                "sigwatch does not follow redirects for POST; set url to the final address"
            )
        raise status_error(response.status, "", response.headers, shown)

    def _items(self, answer: Any) -> list[Any]:
        """The list ``items`` selects; ParseError naming the expression when it is no list."""
        found = self.options.items.search(answer)
        if isinstance(found, list):
            return found
        what = "nothing" if found is None else f"a {_json_type(found)}"
        raise ParseError(
            f"items expression {self.options.items.source!r} gave {what}, not a list, on the "
            f"answer from {redact_url(self.options.url)}: check it against the API's answer "
            "(an API refusing a request often answers 200 with an error object instead)"
        )


def decode_json(response: FetchedResponse) -> Any:
    """The answer's body parsed as JSON; ParseError saying why it is not."""
    shown = redact_url(response.url)
    content_type = response.headers.get("content-type", "no Content-Type").split(";")[0].strip()
    if not response.body.strip():
        raise ParseError(
            f"{shown} answered HTTP {response.status} with an empty body ({content_type}), not "
            "JSON: check the url and method"
        )
    try:
        return json.loads(response.body)
    except json.JSONDecodeError as exc:
        # json's messages read "Expecting value" or "Unterminated string starting at".
        at = "" if exc.msg.endswith(" at") else " at"
        detail = f"{exc.msg}{at} line {exc.lineno}, column {exc.colno}"
    except RecursionError:
        detail = "nested too deeply to read"
    except ValueError as exc:  # not UTF-8/16/32, or a number too long to convert
        detail = str(exc)
    raise ParseError(
        f"{shown} did not return JSON ({content_type}; {detail}): check that url is the API "
        "and not a web page; a body cut short means the connection was dropped"
    )


def items_to_posts(
    options: JsonOptions, items: list[Any], base_url: str
) -> tuple[list[CollectedPost], list[str]]:
    """One post per usable item, in answer order, and warnings naming the items skipped."""
    posts: list[CollectedPost] = []
    seen: set[str] = set()
    skipped: dict[str, list[int]] = {"id": [], "text": [], "repeated": []}
    undated: list[int] = []
    for index, item in enumerate(items):
        post = item_to_post(options, item, base_url)
        if post is None:
            skipped[_missing_part(options, item)].append(index)
            continue
        if post.external_id in seen:
            skipped["repeated"].append(index)
            continue
        if options.date is not None and post.published_at is None:
            undated.append(index)
        seen.add(post.external_id)
        posts.append(post)
    warnings = [
        _skipped(skipped["id"], len(items), f"id expression {_src(options.id)} gave no usable id"),
        _skipped(
            skipped["text"],
            len(items),
            f"title {_src(options.title)} and text {_src(options.text)} gave no text",
        ),
        _skipped(skipped["repeated"], len(items), "their id repeats one seen before them"),
    ]
    if undated:
        warnings.append(
            f"date expression {_src(options.date)} gave no readable date for "
            f"{_counted(undated, len(items))}; those posts have no date"
        )
    return posts, [warning for warning in warnings if warning]


def item_to_post(options: JsonOptions, item: Any, base_url: str) -> CollectedPost | None:
    """The post for one item, or None when it has no usable id or no text."""
    title = _text(options.title, item)
    body = _text(options.text, item)
    text = body or title
    if not text:
        return None
    link = _link(options.link, item, base_url)
    if options.id is not None:
        external_id = _scalar_text(options.id.search(item))
        if external_id is None:
            return None
    else:
        external_id = link or _item_hash(item)
    markup = options.text.search(item) if options.text is not None else None
    return CollectedPost(
        external_id=external_id,
        text=text,
        url=link,
        title=title or None,
        html=_html(markup, base_url),
        published_at=parse_date(options.date.search(item)) if options.date else None,
        raw=item if isinstance(item, dict) else {"item": item},
    )


def parse_date(value: Any) -> datetime | None:
    """``value`` as an aware UTC datetime, or None when it is no date.

    Numbers (or digit strings) are epoch seconds, or epoch milliseconds from 10^11 up; strings
    are ISO 8601 (``2025-03-19T07:30:11Z``, ``2025-03-19``) or RFC 2822 (``Wed, 19 Mar 2025
    07:30:11 GMT``). A time without zone is taken as UTC.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return _from_epoch(value)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return _from_epoch(int(text) if text.lstrip("-").isdigit() else float(text))
    parsed: datetime
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _from_epoch(number: float) -> datetime | None:
    if isinstance(number, float) and not math.isfinite(number):
        return None
    try:
        if abs(number) >= _EPOCH_MS_FROM:
            return _EPOCH + timedelta(milliseconds=number)
        return _EPOCH + timedelta(seconds=number)
    except OverflowError:
        return None


def _text(expression: Expression | None, item: Any) -> str:
    """The plain text an expression gives on ``item``: HTML stripped, lists joined."""
    if expression is None:
        return ""
    value = expression.search(item)
    if isinstance(value, list):
        parts = [_scalar_text(part) for part in value]
        return " ".join(html_to_text(part) for part in parts if part)
    scalar = _scalar_text(value)
    return html_to_text(scalar) if scalar else ""


def _html(value: Any, base_url: str) -> str | None:
    """Sanitised HTML when the text the item gives is markup; None for plain text."""
    if not isinstance(value, str) or "<" not in value:
        return None
    return sanitize_html(absolutize_urls(value, base_url)) or None


def _link(link: Expression | LinkTemplate | None, item: Any, base_url: str) -> str | None:
    if link is None:
        return None
    if isinstance(link, LinkTemplate):
        return link.render(item)
    value = _scalar_text(link.search(item))
    if value is None:
        return None
    url = urljoin(base_url, value)
    # Links become anchors in the dashboard and alerts: javascript: and data: must not.
    return url if urlsplit(url).scheme in ("http", "https") else None


def _scalar_text(value: Any) -> str | None:
    """A string (stripped, not empty) or a number as text; None for anything else."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _item_hash(item: Any) -> str:
    canonical = json.dumps(item, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def _missing_part(options: JsonOptions, item: Any) -> str:
    """Why an item gave no post: "text" when it has none, else "id"."""
    if not (_text(options.text, item) or _text(options.title, item)):
        return "text"
    return "id"


def _skipped(indexes: list[int], total: int, reason: str) -> str:
    if not indexes:
        return ""
    return f"skipped {_counted(indexes, total)}: {reason}"


def _counted(indexes: list[int], total: int) -> str:
    shown = ", ".join(str(index) for index in indexes[:_SHOWN_INDEXES])
    more = ", …" if len(indexes) > _SHOWN_INDEXES else ""
    return f"{len(indexes)} of {total} items (at {shown}{more}, counting from 0)"


def _src(expression: Expression | None) -> str:
    return repr(expression.source) if expression is not None else "(not set)"


def _with_custom_headers(
    headers: dict[str, str], custom: dict[str, SecretStr] | None
) -> dict[str, str]:
    """``headers`` with the source's own headers added, theirs winning whatever the case."""
    if not custom:
        return headers
    names = {name.lower() for name in custom}
    merged = {name: value for name, value in headers.items() if name.lower() not in names}
    merged.update({name: value.get_secret_value() for name, value in custom.items()})
    return merged


def _next_state(state: dict[str, Any], response: FetchedResponse) -> dict[str, Any]:
    """The state with the answer's validators, for the next conditional GET."""
    new_state = dict(state)
    for key, header in (("etag", "etag"), ("last_modified", "last-modified")):
        value = response.headers.get(header)
        if value:
            new_state[key] = value
        elif response.status != 304:
            # A validator the server stopped sending must not keep the next request conditional.
            new_state.pop(key, None)
    return new_state


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "JSON object"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    return "number" if isinstance(value, int | float) else type(value).__name__


def _function_problem(node: Any) -> str | None:
    """What is wrong with the first function call in an expression's syntax tree, if any.

    jmespath only finds an unknown function or a wrong number of arguments when it evaluates
    the call, which may be never for the items at hand; the tree shows them at once.
    """
    if not isinstance(node, dict):
        return None
    children = node.get("children", ())
    if node.get("type") == "function_expression":
        name = str(node.get("value"))
        if name not in _FUNCTIONS:
            known = ", ".join(sorted(_FUNCTIONS))
            return f"calls {name}(), which JMESPath does not have; its functions are: {known}"
        signature = _FUNCTIONS[name]["signature"]
        variadic = bool(signature) and bool(signature[-1].get("variadic"))
        if len(children) < len(signature) or (not variadic and len(children) > len(signature)):
            least = "at least " if variadic else ""
            return (
                f"calls {name}() with {len(children)} arguments; it takes {least}{len(signature)}"
            )
    for child in children:
        problem = _function_problem(child)
        if problem is not None:
            return problem
    return None


def _syntax_problem(exc: Exception) -> str:
    """What jmespath found wrong, without its multi-line rendering of the expression."""
    if isinstance(exc, jmespath_errors.IncompleteExpressionError):
        return "it ends too early (an unclosed bracket or quote, or a trailing operator?)"
    if isinstance(exc, jmespath_errors.LexerError):
        return f"unexpected character at position {exc.lexer_position}"
    if isinstance(exc, jmespath_errors.ParseError):
        token = exc.token_value if exc.token_type != "eof" else "end"
        return f"unexpected {token!r} at position {exc.lex_position}"
    return str(exc).splitlines()[0]


def _located(field: str, message: str) -> ValidationError:
    """A validation error on option ``field``, so the 422 names it; it quotes no input."""
    return ValidationError.from_exception_data(
        "JsonOptions",
        [
            InitErrorDetails(
                type=PydanticCustomError("value_error", message),
                loc=(field,),
                input=None,
            )
        ],
    )
