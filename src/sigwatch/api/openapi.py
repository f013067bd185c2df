"""The error answers in the OpenAPI document, drawn from each route's shape in one place.

Routes declare only what they return on success. :func:`document_error_responses` then adds the
errors a route can give because of how it is built: its credentials (401), the rate limits of
every route under /api (429), an admin dependency (403), path parameters (404), a body (413,
422), parameters of any kind (422) and a database session (503). A route that gives an error its
shape does not show (a 409 from its repository, a 404 for an id in its body) names it in its
decorator with ``responses=error_responses(...)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel

from sigwatch.api.deps import get_principal, get_session, require_admin
from sigwatch.api.routes import API_PREFIX


class ErrorOut(BaseModel):
    """An error: what went wrong and how to fix it."""

    detail: str


class FieldErrorOut(BaseModel):
    """One invalid field: where (``["body", "config", "url"]``), why, and the kind of error."""

    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorOut(BaseModel):
    """Invalid input: one entry per field at fault."""

    detail: list[FieldErrorOut]


_REF = "#/components/schemas/{model}"
#: Errors of routes whose modules are being reworked apart from this one (user management):
#: their repository raises Conflict for a taken username and for the last active admin.
#: To move into those routes' decorators (``responses=error_responses(409)``).
_CONFLICTS = {
    ("POST", f"{API_PREFIX}/users"),
    ("PATCH", f"{API_PREFIX}/users/{{user_id}}"),
    ("DELETE", f"{API_PREFIX}/users/{{user_id}}"),
}
#: The routes that trade credentials for tokens: they answer 401 to wrong ones.
_SIGN_IN_PREFIX = f"{API_PREFIX}/auth/"
_DESCRIPTIONS = {
    401: "No credentials, or bad ones: send a bearer token or an X-API-Key header.",
    403: "The caller's role does not allow this.",
    404: "No such object, or one the caller may not see.",
    409: "The request conflicts with the current state; the detail says how to resolve it.",
    413: "The request body is larger than 1 MiB.",
    422: "Invalid input; each entry of detail names the field (loc) and the reason.",
    429: "Too many requests: wait for Retry-After seconds.",
    503: "The database is unavailable: retry after Retry-After seconds.",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a route decorator: errors the route gives that its shape does not show."""
    return {
        status: {"description": _DESCRIPTIONS[status], "model": _model(status)}
        for status in statuses
    }


def document_error_responses(app: FastAPI) -> None:
    """Make ``app``'s OpenAPI document list, for every API route, the errors its shape implies.

    Responses a route declares itself are kept; the additions are made to the generated document
    (routers are included lazily, so their routes are read as the document is drawn).
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        document = generate()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for model in (ErrorOut, ValidationErrorOut):
            model_schema = model.model_json_schema(ref_template=_REF)
            schemas.update(model_schema.pop("$defs", {}))
            schemas.setdefault(model.__name__, model_schema)
        for context in iter_route_contexts(app.routes):
            route = context.route
            if not isinstance(route, APIRoute) or not route.include_in_schema:
                continue
            operations = document.get("paths", {}).get(route.path_format, {})
            for method in route.methods or ():
                operation = operations.get(method.lower())
                if operation is None:
                    continue
                responses = operation.setdefault("responses", {})
                implied = _implied_statuses(route)
                if (method, route.path_format) in _CONFLICTS:
                    implied.add(409)
                for status in sorted(implied):
                    responses.setdefault(str(status), _response(status))
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _implied_statuses(route: APIRoute) -> set[int]:
    calls = set(_dependency_calls(route.dependant))
    statuses: set[int] = set()
    if route.path.startswith(API_PREFIX):
        statuses.add(429)  # every request under /api spends from a rate-limit budget
    if get_principal in calls or route.path.startswith(_SIGN_IN_PREFIX):
        statuses.add(401)  # no or bad credentials; for the sign-in routes, wrong ones
    if require_admin in calls:
        statuses.add(403)
    if route.dependant.path_params:
        statuses |= {404, 422}
    if route.body_field is not None or _takes_body(route):
        statuses |= {413, 422}
    if route.dependant.query_params or route.dependant.header_params:
        statuses.add(422)
    if get_session in calls:
        statuses.add(503)
    return statuses


def _takes_body(route: APIRoute) -> bool:
    """A route that reads its body itself declares it in ``openapi_extra``."""
    return bool((route.openapi_extra or {}).get("requestBody"))


def _dependency_calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from _dependency_calls(dependency)


def _model(status: int) -> type[BaseModel]:
    return ValidationErrorOut if status == 422 else ErrorOut


def _response(status: int) -> dict[str, Any]:
    reference = _REF.format(model=_model(status).__name__)
    return {
        "description": _DESCRIPTIONS[status],
        "content": {"application/json": {"schema": {"$ref": reference}}},
    }
