"""Checking the AsyncAPI document: against the official AsyncAPI 3.0.0 JSON schema (vendored in
`tests/support/schemas/`, resolved offline: the draft-07 meta-schema it names comes from
`jsonschema_specifications`, and nothing is fetched), and messages against the document."""

import json
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from jsonschema_specifications import REGISTRY as SPECIFICATIONS
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource
from referencing.jsonschema import DRAFT7

ASYNCAPI_SCHEMA = Path(__file__).parent / "schemas" / "asyncapi-3.0.0.json"
DRAFT7_ID = "http://json-schema.org/draft-07/schema"
DOCUMENT_URI = "urn:sanwu:asyncapi"


def nothing_remote(uri: str) -> Resource[Any]:
    raise NoSuchResource(ref=uri)


def asyncapi_validator() -> Draft7Validator:
    """The validator of AsyncAPI 3.0.0 documents."""
    schema = json.loads(ASYNCAPI_SCHEMA.read_text(encoding="utf-8"))
    registry: Registry[Any] = Registry(retrieve=nothing_remote).with_resource(
        DRAFT7_ID, SPECIFICATIONS[DRAFT7_ID]
    )
    return Draft7Validator(schema, registry=registry)


def problems_of(document: dict[str, Any]) -> list[str]:
    """Why the document is not AsyncAPI 3.0.0 (none if it is)."""
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message[:300]}"
        for error in asyncapi_validator().iter_errors(document)
    ]


class MessageChecker:
    """Each part of a message (payload, headers, key) checked against the schema the document
    gives it, its references resolved within the document."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.registry: Registry[Any] = Registry(retrieve=nothing_remote).with_resource(
            DOCUMENT_URI, DRAFT7.create_resource(document)
        )

    def problems(
        self, message: str, *, payload: Any, headers: dict[str, Any], key: str | None
    ) -> list[str]:
        pointer = f"#/components/messages/{message}"
        found = self._problems(f"{pointer}/payload", payload, "payload")
        found += self._problems(f"{pointer}/headers", headers, "headers")
        if key is not None:
            found += self._problems(f"{pointer}/bindings/kafka/key", key, "key")
        return found

    def _problems(self, pointer: str, instance: Any, part: str) -> list[str]:
        validator = Draft7Validator(
            {"$ref": DOCUMENT_URI + pointer},
            registry=self.registry,
            format_checker=FormatChecker(),
        )
        return [describe(part, error) for error in validator.iter_errors(instance)]


def describe(part: str, error: ValidationError) -> str:
    where = "/".join(map(str, error.absolute_path))
    return f"{part} {where}: {error.message[:300]}"
