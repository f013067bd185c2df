"""Wire shapes of the kinds: what the API tells a client about each source and channel kind."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from sigwatch.kinds import KindDescription


class KindOut(BaseModel):
    """A source or channel kind: its name, what it is, and the JSON Schema of its options.

    Secret options are marked in the schema as ``"writeOnly": true, "format": "password"``: a
    client sends them and never gets them back unmasked.
    """

    name: str = Field(description="The kind's name, as given in `kind` when adding one.")
    description: str = Field(description="What the kind collects from or delivers to.")
    secret_fields: list[str] = Field(
        description="The options that hold secrets: sealed at rest and masked when shown."
    )
    options_schema: dict[str, Any] = Field(description="JSON Schema of the kind's `config` object.")

    @classmethod
    def of(cls, description: KindDescription) -> KindOut:
        """The wire shape of a registry's description of one kind."""
        return cls(
            name=description.name,
            description=description.description,
            secret_fields=list(description.secret_fields),
            options_schema=description.options_schema,
        )
