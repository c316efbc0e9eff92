"""Request models of /auth and /users, and the completeness of their OpenAPI entries."""

from __future__ import annotations

import re
import sys
from typing import Any

import pytest
from pydantic import ValidationError

from config.settings import Settings
from config.text import is_control
from gateway.app import create_app
from gateway.auth.models import Login, RegisterAgent, RegisterUser, storable
from gateway.fields import PLAIN_TEXT_RULE, plain_text_pattern
from gateway.routes.users import ContactIn, ProfileIn
from gateway.ws.account_sockets import REPLACED_REASON
from tests.fakes.readiness import healthy_backends

USER = {"email": "Ada@Example.ORG", "password": "long enough pw", "full_name": " Ada "}


def test_email_is_normalised_and_names_stripped() -> None:
    body = RegisterUser.model_validate(USER)
    assert body.email == "ada@example.org"
    assert body.full_name == "Ada"


@pytest.mark.parametrize("phone", ["+14155550100", "+442071838750", "+12", "+123456789012345"])
def test_e164_phones_are_accepted(phone: str) -> None:
    assert RegisterUser.model_validate({**USER, "phone": phone}).phone == phone


@pytest.mark.parametrize(
    "phone",
    ["14155550100", "+0123", "+1", "+1234567890123456", "+1 415", "+\u0661\u0662\u0663", "+1\n"],
)
def test_non_e164_phones_are_refused(phone: str) -> None:
    with pytest.raises(ValidationError):
        RegisterUser.model_validate({**USER, "phone": phone})


@pytest.mark.parametrize(
    "change",
    [
        {"email": "no-at-sign"},
        {"email": "a@b@c.org"},
        {"password": "short"},
        {"full_name": "   "},
        {"full_name": "a\x00b"},
        {"full_name": "\ud800"},
        {"unknown": 1},
    ],
)
def test_bad_registrations_are_refused(change: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RegisterUser.model_validate({**USER, **change})


def test_agents_may_carry_a_badge_but_users_may_not() -> None:
    assert RegisterAgent.model_validate({**USER, "badge_number": " B7 "}).badge_number == "B7"
    with pytest.raises(ValidationError):
        RegisterUser.model_validate({**USER, "badge_number": "B7"})


def test_login_accepts_any_bounded_email_text() -> None:
    # A malformed email is a failed login (401), not a validation error.
    assert Login.model_validate({"email": "nobody", "password": "x"}).email == "nobody"
    with pytest.raises(ValidationError):
        Login.model_validate({"email": "x" * 255, "password": "x"})


def test_storable_refuses_nul_and_lone_surrogates() -> None:
    assert storable("ok ✓") == "ok ✓"
    for bad in ("a\x00", "\udc00"):
        with pytest.raises(ValueError, match="must"):
            storable(bad)


CONTACT = {"name": "G", "phone": "+14155550123", "notify_via": ["sms", "push"]}


def test_a_reachable_contact_is_accepted() -> None:
    contact = ContactIn.model_validate(CONTACT)
    assert contact.fields().notify_via == ("sms", "push")


@pytest.mark.parametrize(
    "change",
    [
        {"notify_via": ["email"]},
        {"phone": None},
        {"phone": None, "notify_via": ["push"]},
        {"notify_via": ["push", "push"]},
        {"notify_via": ["fax"]},
        {"notify_via": []},
    ],
)
def test_unreachable_or_malformed_contacts_are_refused(change: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ContactIn.model_validate({**CONTACT, **change})


def test_profile_forbids_unknown_members() -> None:
    with pytest.raises(ValidationError):
        ProfileIn.model_validate({"full_name": "X", "email": "x@example.org"})


EXPECTED_ERRORS = {
    ("post", "/auth/register/user"): {"409", "422", "429"},
    ("post", "/auth/register/agent"): {"409", "422", "429"},
    ("post", "/auth/login/user"): {"401", "422", "429"},
    ("post", "/auth/login/agent"): {"401", "403", "422", "429"},
    ("post", "/auth/refresh"): {"401", "422", "429"},
    ("post", "/auth/logout"): {"401", "422"},
    ("get", "/auth/me"): {"401"},
    ("get", "/users/profile"): {"401", "403", "429"},
    ("put", "/users/profile"): {"401", "403", "422", "429"},
    ("get", "/users/emergency-contacts"): {"401", "403", "429"},
    ("post", "/users/emergency-contacts"): {"401", "403", "409", "422", "429"},
    ("get", "/users/emergency-contacts/{contact_id}"): {"401", "403", "404", "422", "429"},
    ("put", "/users/emergency-contacts/{contact_id}"): {"401", "403", "404", "422", "429"},
    ("delete", "/users/emergency-contacts/{contact_id}"): {"401", "403", "404", "422", "429"},
    ("get", "/admin/agents"): {"401", "403", "422"},
    ("post", "/admin/agents/{agent_id}/approve"): {"401", "403", "404", "422"},
    ("post", "/admin/agents/{agent_id}/suspend"): {"401", "403", "404", "422"},
    ("post", "/admin/agent-invites"): {"401", "403", "422"},
    ("get", "/auth/totp"): {"401", "403"},
    ("post", "/auth/totp/enrolment"): {"401", "403", "409", "422", "429"},
    ("post", "/auth/totp/enrolment/confirm"): {"401", "403", "409", "422", "429"},
    ("post", "/auth/totp/disable"): {"401", "403", "409", "422", "429"},
}


def test_openapi_documents_every_auth_users_and_admin_operation(settings: Settings) -> None:
    spec = create_app(settings, backends=healthy_backends()).openapi()
    schemas = spec["components"]["schemas"]
    for (method, path), errors in EXPECTED_ERRORS.items():
        operation = spec["paths"][path][method]
        responses = operation["responses"]
        assert errors <= set(responses), (method, path)
        success = [code for code in responses if code.startswith("2")]
        assert len(success) == 1, (method, path)
        for code in errors:
            content = responses[code]["content"]
            assert content["application/problem+json"]["schema"] == {
                "$ref": "#/components/schemas/Problem"
            }
        if "429" in errors:
            assert "Retry-After" in responses["429"]["headers"]
        body = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if body is not None:
            ref = body["schema"].get("$ref") or body["schema"]["anyOf"][0]["$ref"]
            schema = schemas[ref.rsplit("/", 1)[-1]]
            assert schema["additionalProperties"] is False, ref
            for name, prop in schema["properties"].items():
                variants = prop.get("anyOf", [prop])
                for variant in variants:
                    if variant.get("type") == "string":
                        assert "maxLength" in variant, (ref, name)


def test_openapi_lists_the_websocket_frames(settings: Settings) -> None:
    spec = create_app(settings, backends=healthy_backends()).openapi()
    frames = spec["x-websocket"]
    assert {"auth", "offer.received", "offer.accept"} <= set(frames["client"])
    assert frames["client"]["offer.received"]["x-agents-only"] is True
    assert {"alert.offer", "assignment.revoked", "offer.revoked"} <= set(frames["server"])
    schemas = spec["components"]["schemas"]
    auth = schemas["WsClient_auth"]
    assert "acks_offers" in auth["properties"]
    revoked = frames["server"]["assignment.revoked"]["data"]["$ref"].rsplit("/", 1)[-1]
    assert set(schemas[revoked]["required"]) == {"alert_id", "reason"}
    # The deployment's bounds of one socket (issue 16).
    limits = frames["limits"]
    assert limits["max_frame_bytes_before_auth"] == settings.http.ws_max_auth_frame_bytes
    assert limits["max_frame_bytes"] == settings.http.ws_max_frame_bytes
    assert (limits["too_big_close_code"], limits["rate_limited_close_code"]) == (1009, 1008)
    assert limits["frame_burst"] == settings.http.ws_frame_burst
    assert limits["rate_limited_error_code"] == "rate_limited"
    assert limits["refusal_notice_s"] == settings.http.ws_refusal_notice_s
    assert limits["max_sockets_per_account"] == settings.http.ws_max_sockets_per_account
    assert (limits["replaced_close_code"], limits["replaced_reason"]) == (1008, REPLACED_REASON)
    error = frames["server"]["error"]["data"]["$ref"].rsplit("/", 1)[-1]
    assert "refused" in schemas[error]["properties"]


def test_plain_text_is_stated_in_the_openapi_document_of_every_text_field(
    settings: Settings,
) -> None:
    document = create_app(settings, backends=healthy_backends()).openapi()
    schemas = document["components"]["schemas"]
    text_fields = {
        ("RegisterUser", "full_name"),
        ("RegisterAgent", "badge_number"),
        ("ProfileIn", "full_name"),
        ("ContactIn", "name"),
        ("ContactIn", "relationship"),
        ("AlertCreate", "description"),
        ("StatusUpdate", "note"),
        ("CheckInStart", "note"),
        ("ApproveIn", "reason"),
        ("SuspendIn", "reason"),
        ("ZoneIn", "name"),
    }
    for model, field in sorted(text_fields):
        schema = schemas[model]["properties"][field]
        variants = schema.get("anyOf", [schema])
        (text,) = [v for v in variants if v.get("type") == "string"]
        assert text["pattern"] == plain_text_pattern(), (model, field)
        described = " ".join(str(s.get("description", "")) for s in (schema, text))
        assert PLAIN_TEXT_RULE in described, (model, field)


def test_the_documented_pattern_refuses_exactly_what_the_api_refuses() -> None:
    pattern = re.compile(plain_text_pattern())
    # fullmatch: Python's "$" also matches before a final "\n" (ECMA-262's does not).
    differ = [
        code
        for code in range(sys.maxunicode + 1)
        if (pattern.fullmatch(f"a{chr(code)}b") is None) != is_control(chr(code))
    ]
    assert differ == []
