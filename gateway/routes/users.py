"""``/users``: the caller's own profile and emergency contacts.

Only the ``user`` role: agents and admins get 403 here (they read their
account through ``GET /auth/me``). Contacts are always the caller's own; the
id of another user's contact is answered 404, like an unknown one.
The profile also sets the cancel and duress PINs (4-8 digits, stored as
argon2 hashes, never shown: the profile says only whether PINs are set, in
``has_cancel_pin``, never which). Both are set, changed or cleared
(``null``) together and only with the account ``password``; left out, both
are kept. Easy PINs (``gateway.auth.pins.is_trivial_pin``) and two equal
ones are refused with 422, from the request alone: no answer depends on the
stored PINs. With PINs set, the user's own cancel of an alert needs one; a
cancel with the duress PIN shows a cancelled alert while responders are
silently escalated (see ``gateway.routes.alerts``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Response
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from starlette.requests import Request

from config.settings import Settings
from gateway.auth.models import (
    Email,
    LoginPassword,
    Me,
    Name,
    Phone,
    RequestBody,
    problem_responses,
)
from gateway.auth.pins import is_trivial_pin
from gateway.auth.principal import Principal
from gateway.deps import (
    AccountsDep,
    ContactsDep,
    SettingsDep,
    UserPrincipal,
)
from gateway.fields import PLAIN_TEXT
from gateway.ports import ContactFields, ContactRow
from gateway.ratelimit import rate_limit
from gateway.routes.auth import PasswordPorts, PasswordPortsDep, confirm_password

_limit = Depends(rate_limit("users", key="principal", rule="per_principal", per_route=True))

router = APIRouter(prefix="/users", tags=["users"], dependencies=[_limit])

Channel = Literal["sms", "email", "push"]
Relationship = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    PLAIN_TEXT,
]

_AUTH_ERRORS = (401, 403, 429)


def _not_trivial(pin: str) -> str:
    if is_trivial_pin(pin):
        raise ValueError("the PIN is too easy to guess (a repeat, a run or a repeated block)")
    return pin


Pin = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9]{4,8}$", max_length=8),
    AfterValidator(_not_trivial),
]

_PINS = frozenset({"cancel_pin", "duress_pin"})


class ProfileIn(RequestBody):
    """The whole editable profile (PUT replaces it; an omitted phone is cleared).

    The PINs go together: both given (set or changed), both ``null``
    (cleared), or both left out (kept); either given needs ``password``.
    """

    full_name: Name
    phone: Phone | None = None
    cancel_pin: Pin | None = Field(
        default=None,
        description="4-8 digits, not easy to guess (no repeat, run or repeated block); "
        "given with `duress_pin` and `password`. Null (with `duress_pin` null) clears both.",
    )
    duress_pin: Pin | None = Field(
        default=None,
        description="4-8 digits, other than `cancel_pin`; a cancel with it shows the user "
        "a cancelled alert while responders are escalated.",
    )
    password: LoginPassword | None = Field(
        default=None,
        description="The account password: needed to set, change or clear the PINs "
        "(403 when wrong); not needed otherwise.",
    )

    @model_validator(mode="after")
    def _pins_together(self) -> Self:
        given = self.model_fields_set & _PINS
        if not given:
            return self
        if given != _PINS or (self.cancel_pin is None) != (self.duress_pin is None):
            raise ValueError("cancel_pin and duress_pin are set, or cleared, together")
        if self.password is None:
            raise ValueError("the account password is needed to change the PINs")
        if self.cancel_pin is not None and self.cancel_pin == self.duress_pin:
            raise ValueError("the two PINs must differ")
        return self

    @property
    def changes_pins(self) -> bool:
        return bool(self.model_fields_set & _PINS)


def _present(field: str) -> dict[str, Any]:
    return {"required": [field], "properties": {field: {"type": "string"}}}


def _listed(channel: str) -> dict[str, Any]:
    return {
        "required": ["notify_via"],
        "properties": {"notify_via": {"contains": {"const": channel}}},
    }


#: The reachability rules of :class:`ContactIn` as JSON Schema (OpenAPI 3.1),
#: so the document states what makes a well-typed contact a 422.
_CONTACT_RULES: dict[str, Any] = {
    "allOf": [
        {"anyOf": [_present("phone"), _present("email")]},
        {"if": _listed("sms"), "then": _present("phone")},
        {"if": _listed("email"), "then": _present("email")},
    ]
}


class ContactIn(RequestBody):
    """A contact must be reachable on every channel it lists: ``sms`` needs a
    phone, ``email`` an email; and it needs a phone or an email in any case
    (``push`` goes to the app the contact is found by). A contact that breaks
    one of these rules, or lists a channel twice, is refused with 422."""

    model_config = ConfigDict(json_schema_extra=_CONTACT_RULES)

    name: Name
    phone: Phone | None = Field(
        None, description="Needed when `notify_via` lists `sms`; a phone or an email is needed."
    )
    email: Email | None = Field(
        None, description="Needed when `notify_via` lists `email`; a phone or an email is needed."
    )
    relationship: Relationship | None = None
    notify_via: list[Channel] = Field(
        min_length=1,
        max_length=3,
        json_schema_extra={"uniqueItems": True},
        description="Channels to notify the contact on, each at most once.",
    )

    @model_validator(mode="after")
    def _reachable(self) -> Self:
        if len(set(self.notify_via)) != len(self.notify_via):
            raise ValueError("notify_via must not repeat a channel")
        if "sms" in self.notify_via and self.phone is None:
            raise ValueError("notify_via 'sms' needs a phone")
        if "email" in self.notify_via and self.email is None:
            raise ValueError("notify_via 'email' needs an email")
        if self.phone is None and self.email is None:
            raise ValueError("a contact needs a phone or an email")
        return self

    def fields(self) -> ContactFields:
        return ContactFields(
            name=self.name,
            phone=self.phone,
            email=self.email,
            relationship=self.relationship,
            notify_via=tuple(self.notify_via),
        )


class ContactOut(BaseModel):
    id: UUID
    name: str
    phone: str | None
    email: str | None
    relationship: str | None
    notify_via: list[Channel]


class ContactList(BaseModel):
    items: list[ContactOut]


def _out(contact: ContactRow) -> ContactOut:
    return ContactOut(
        id=contact.id,
        name=contact.name,
        phone=contact.phone,
        email=contact.email,
        relationship=contact.relationship,
        notify_via=list(contact.notify_via),
    )


async def _set_pins(
    request: Request,
    principal: Principal,
    body: ProfileIn,
    settings: Settings,
    ports: PasswordPorts,
) -> None:
    """Set or clear both PINs, after checking the account password (403 if wrong;
    throttled and counted like a login, so a held phone is no password oracle)."""
    if not body.changes_pins:
        return
    assert body.password is not None  # ProfileIn's rule
    await confirm_password(request, principal, body.password, settings, ports)
    hasher = ports.hasher
    cancel = None if body.cancel_pin is None else await hasher.hash_async(body.cancel_pin)
    duress = None if body.duress_pin is None else await hasher.hash_async(body.duress_pin)
    await ports.accounts.set_pins(principal.id, cancel=cancel, duress=duress)


def _not_found() -> HTTPException:
    return HTTPException(status_code=404, detail="no such emergency contact")


@router.get("/profile", responses=problem_responses(*_AUTH_ERRORS), summary="My profile")
async def get_profile(principal: UserPrincipal, accounts: AccountsDep) -> Me:
    account = await accounts.get_account(principal.id)
    if account is None:
        raise HTTPException(status_code=401, detail="account no longer exists")
    return Me.of(account)


@router.put(
    "/profile",
    responses=problem_responses(*_AUTH_ERRORS, 422, 429),
    summary="Replace my profile (changing the PINs needs the password: 403 when wrong)",
)
async def put_profile(
    request: Request,
    principal: UserPrincipal,
    body: ProfileIn,
    settings: SettingsDep,
    ports: PasswordPortsDep,
) -> Me:
    await _set_pins(request, principal, body, settings, ports)
    account = await ports.accounts.update_profile(
        principal.id, full_name=body.full_name, phone=body.phone
    )
    if account is None:
        raise HTTPException(status_code=401, detail="account no longer exists")
    return Me.of(account)


@router.get(
    "/emergency-contacts",
    responses=problem_responses(*_AUTH_ERRORS),
    summary="My emergency contacts, oldest first",
)
async def list_contacts(principal: UserPrincipal, contacts: ContactsDep) -> ContactList:
    found = await contacts.list_contacts(principal.id)
    return ContactList(items=[_out(contact) for contact in found])


@router.post(
    "/emergency-contacts",
    status_code=201,
    responses=problem_responses(*_AUTH_ERRORS, 409, 422),
    summary="Add an emergency contact (409 beyond the per-user maximum)",
)
async def create_contact(
    principal: UserPrincipal, body: ContactIn, contacts: ContactsDep, settings: SettingsDep
) -> ContactOut:
    contact = await contacts.create_contact(
        principal.id, body.fields(), limit=settings.users.max_emergency_contacts
    )
    return _out(contact)


@router.get(
    "/emergency-contacts/{contact_id}",
    responses=problem_responses(*_AUTH_ERRORS, 404, 422),
    summary="One of my emergency contacts",
)
async def get_contact(
    principal: UserPrincipal, contact_id: UUID, contacts: ContactsDep
) -> ContactOut:
    contact = await contacts.get_contact(principal.id, contact_id)
    if contact is None:
        raise _not_found()
    return _out(contact)


@router.put(
    "/emergency-contacts/{contact_id}",
    responses=problem_responses(*_AUTH_ERRORS, 404, 422),
    summary="Replace one of my emergency contacts",
)
async def put_contact(
    principal: UserPrincipal, contact_id: UUID, body: ContactIn, contacts: ContactsDep
) -> ContactOut:
    contact = await contacts.replace_contact(principal.id, contact_id, body.fields())
    if contact is None:
        raise _not_found()
    return _out(contact)


@router.delete(
    "/emergency-contacts/{contact_id}",
    status_code=204,
    response_class=Response,
    responses=problem_responses(*_AUTH_ERRORS, 404, 422),
    summary="Delete one of my emergency contacts",
)
async def delete_contact(
    principal: UserPrincipal, contact_id: UUID, contacts: ContactsDep
) -> Response:
    if not await contacts.delete_contact(principal.id, contact_id):
        raise _not_found()
    return Response(status_code=204)
