"""The OpenAPI document states what makes a schema-valid request fail (issue 16).

schemathesis's "schema-valid request rejected" check found 7 operations whose
422s followed rules the document did not state: opaque cursors (4 listings),
the ``recorded_at`` window, and which contact channels need a phone or an email.
"""

from __future__ import annotations

import itertools
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from config.settings import Settings
from gateway.app import create_app
from gateway.routes.checkins import CheckInStart
from gateway.routes.users import ContactIn


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return create_app(Settings()).openapi()


def _parameter(document: dict[str, Any], path: str, name: str) -> dict[str, Any]:
    (found,) = [p for p in document["paths"][path]["get"]["parameters"] if p["name"] == name]
    return found


@pytest.mark.parametrize(
    "path", ["/alerts", "/geofencing/events", "/geofencing/zones", "/admin/agents"]
)
def test_finding_the_document_says_cursors_are_opaque(document: dict[str, Any], path: str) -> None:
    cursor = _parameter(document, path, "cursor")
    description = cursor["description"]
    assert "Opaque" in description
    assert "next_cursor" in description
    assert "422" in description


def test_finding_the_document_states_the_recorded_at_window(document: dict[str, Any]) -> None:
    body = document["paths"]["/geofencing/location"]["post"]["requestBody"]
    ref = body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    description = document["components"]["schemas"][ref]["properties"]["recorded_at"]["description"]
    for fact in ("60 s in the future", "24 h in the past", "422", "MAX_AGE_S"):
        assert fact in description


def _contact_cases() -> list[dict[str, Any]]:
    cases = []
    for phone, email in itertools.product((None, "+4915112345678"), (None, "a@example.org")):
        for size in (1, 2, 3):
            for channels in itertools.combinations(("sms", "email", "push"), size):
                body: dict[str, Any] = {"name": "Mum", "notify_via": list(channels)}
                if phone:
                    body["phone"] = phone
                if email:
                    body["email"] = email
                cases.append(body)
    cases.append({"name": "Mum", "phone": "+4915112345678", "notify_via": ["sms", "sms"]})
    cases.append({"name": "Mum", "phone": None, "email": "a@example.org", "notify_via": ["sms"]})
    return cases


def test_finding_the_contact_schema_states_which_channels_need_a_phone_or_an_email(
    document: dict[str, Any],
) -> None:
    """The document's schema of a contact accepts exactly the contacts the API accepts."""
    schema = {**document["components"]["schemas"]["ContactIn"]}
    validator = jsonschema.Draft202012Validator(schema)
    refused = 0
    for body in _contact_cases():
        try:
            ContactIn.model_validate(body)
            accepted = True
        except ValidationError:
            accepted = False
            refused += 1
        assert validator.is_valid(body) == accepted, body
    assert refused >= 10


def test_the_checkin_schema_states_exactly_one_due_time(document: dict[str, Any]) -> None:
    validator = jsonschema.Draft202012Validator(document["components"]["schemas"]["CheckInStart"])
    place = {"latitude": 52.5, "longitude": 13.4}
    due_at = "2030-01-01T00:00:00Z"
    for body in (
        place,
        {**place, "due_in_s": 600},
        {**place, "due_at": due_at},
        {**place, "due_in_s": 600, "due_at": due_at},
        {**place, "due_in_s": None, "due_at": due_at},
    ):
        try:
            CheckInStart.model_validate(body)
            accepted = True
        except ValidationError:
            accepted = False
        assert validator.is_valid(body) == accepted, body
