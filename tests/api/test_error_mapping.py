"""Who must act decides the status: the caller's input is a 422 naming the field, the
deployment's configuration a 500 saying the operator must fix it.

A small app with sigwatch's own handlers and routes that raise each error, so every mapping is
checked even where no production route raises it yet.
"""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, ValidationError

from sigwatch.api.errors import register_error_handlers
from sigwatch.errors import ConfigError, InvalidInput, InvalidOptions, OptionProblem


class _Options(BaseModel):
    url: str
    interval_s: int


def _app() -> FastAPI:
    app = FastAPI()
    register_error_handlers(app)

    @app.post("/options")
    async def bad_options() -> None:
        raise InvalidOptions(
            "rss",
            [
                OptionProblem(("url",), "must be an http:// or https:// URL"),
                OptionProblem(("headers", "Authorization"), "must be one line", "value_error"),
            ],
        )

    @app.patch("/options-from-pydantic")
    async def bad_options_from_pydantic() -> None:
        try:
            _Options.model_validate({"url": "x", "interval_s": "often"})
        except ValidationError as exc:
            raise InvalidOptions.from_validation_errors(
                "webhook", exc.errors(include_input=False), what="channel"
            ) from None

    @app.post("/setting")
    async def bad_setting() -> None:
        raise ConfigError("the secret key is empty: set SIGWATCH_SECRET_KEY")

    @app.post("/input")
    async def bad_input() -> None:
        raise InvalidInput("name", "must not be blank")

    return app


@pytest.fixture
async def client():
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as opened:
        yield opened


async def test_invalid_options_are_a_422_naming_every_bad_option(client):
    response = await client.post("/options")

    assert response.status_code == 422
    assert response.json()["detail"] == [
        {
            "loc": ["body", "config", "url"],
            "msg": "url: must be an http:// or https:// URL",
            "type": "value_error",
        },
        {
            "loc": ["body", "config", "headers", "Authorization"],
            "msg": "headers.Authorization: must be one line",
            "type": "value_error",
        },
    ]


async def test_invalid_options_from_pydantic_keep_location_and_type_but_no_input(client):
    response = await client.patch("/options-from-pydantic")

    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert problem["loc"] == ["body", "config", "interval_s"]
    assert problem["type"] == "int_parsing"
    assert "often" not in response.text


async def test_a_setting_error_is_a_500_that_says_the_operator_must_fix_it(client):
    response = await client.post("/setting")

    assert response.status_code == 500
    detail = response.json()["detail"]
    assert "the server's configuration stopped this request" in detail
    assert "set SIGWATCH_SECRET_KEY" in detail and "operator" in detail


async def test_invalid_input_is_still_a_422_naming_its_field(client):
    response = await client.post("/input")

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "name"]


def test_invalid_options_is_invalid_input_naming_the_first_option():
    error = InvalidOptions("rss", [OptionProblem(("url",), "is not a URL")])

    assert isinstance(error, InvalidInput) and not isinstance(error, ConfigError)
    assert error.field == "config.url"
    assert str(error) == "config.url: invalid rss source options: url: is not a URL"


def test_invalid_options_without_a_problem_is_refused():
    with pytest.raises(ValueError, match="at least one problem"):
        InvalidOptions("rss", [])
