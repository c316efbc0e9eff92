"""Request and response bodies of ``/auth``, and the bounded field types that
``/users`` shares with them.

Every string is length-bounded and refuses NUL and unpaired surrogates
(PostgreSQL cannot store them, and bad input must be a 422, never a 500);
names are plain text (``gateway.fields.PLAIN_TEXT``: no CR, LF or other
control or format character).
Request bodies forbid unknown members.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
)

from actors.roles import Role
from gateway.auth.passwords import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    check_password_policy,
)
from gateway.auth.totp import RecoveryCode, TotpCode
from gateway.fields import PLAIN_TEXT, storable
from gateway.ports import AccountRow, Vetting
from gateway.vetting import MAX_INVITE_CODE_LENGTH

#: E.164: a plus, a non-zero digit, at most 15 digits in all (ASCII digits only).
E164_PATTERN = r"^\+[1-9][0-9]{1,14}$"
MAX_EMAIL_LENGTH = 254
MAX_NAME_LENGTH = 200
MAX_REFRESH_TOKEN_LENGTH = 256


def email_address(value: str) -> str:
    """A syntactically valid address, stored lowercased (no DNS lookup)."""
    storable(value)
    try:
        checked = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address: {exc}") from None
    return checked.normalized.lower()


def password_policy(value: str) -> str:
    storable(value)
    check_password_policy(value)  # WeakPasswordError is a ValueError: a 422
    return value


Text = Annotated[str, AfterValidator(storable)]
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NAME_LENGTH),
    PLAIN_TEXT,
]
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=3, max_length=MAX_EMAIL_LENGTH),
    AfterValidator(email_address),
    WithJsonSchema(
        {"type": "string", "format": "email", "minLength": 3, "maxLength": MAX_EMAIL_LENGTH}
    ),
]
Phone = Annotated[str, StringConstraints(pattern=E164_PATTERN, max_length=16)]
Password = Annotated[
    str,
    StringConstraints(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH),
    AfterValidator(password_policy),
]
#: A login password is only compared, never stored: no policy, just bounds.
LoginPassword = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_PASSWORD_LENGTH), AfterValidator(storable)
]
RefreshToken = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_REFRESH_TOKEN_LENGTH),
    AfterValidator(storable),
]
BadgeNumber = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64),
    PLAIN_TEXT,
]


class RequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterUser(RequestBody):
    email: Email
    password: Password
    full_name: Name
    phone: Phone | None = None


InviteCode = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_INVITE_CODE_LENGTH),
    AfterValidator(storable),
]


class RegisterAgent(RegisterUser):
    badge_number: BadgeNumber | None = None
    invite_code: InviteCode | None = Field(
        default=None,
        description=(
            "A single-use code from an administrator (`POST /admin/agent-invites`): the agent "
            "is approved at once. Without one the agent is `pending` until an administrator "
            "approves it. An unknown, used or expired code is 422 and creates nothing."
        ),
    )


class Registered(BaseModel):
    id: UUID
    email: str
    full_name: str
    role: Role


class RegisteredAgent(Registered):
    vetting: Vetting = Field(
        description="`pending` (self-registered: may sign in, not go on duty) or `approved`"
    )


class Login(RequestBody):
    # Not validated as an address: a login with a malformed email is just a
    # failed login (401), like any other unknown account.
    email: Annotated[
        str, StringConstraints(min_length=1, max_length=MAX_EMAIL_LENGTH), AfterValidator(storable)
    ]
    password: LoginPassword
    totp_code: TotpCode | None = Field(
        default=None,
        description=(
            "An administrator with a second factor: the 6-digit code of their authenticator. "
            "Without it (or `recovery_code`) the login is 401 `totp-required`; a wrong or "
            "already used code is 401 `totp-invalid`. Ignored for other accounts."
        ),
    )
    recovery_code: RecoveryCode | None = Field(
        default=None,
        description=(
            "Instead of `totp_code`: one of the administrator's single-use recovery codes "
            "(dashes, spaces and case ignored). Spent by this login."
        ),
    )


class RefreshRequest(RequestBody):
    refresh_token: RefreshToken


class LogoutRequest(RequestBody):
    refresh_token: RefreshToken | None = None


class PasswordChange(RequestBody):
    current_password: LoginPassword = Field(
        description="The account's password now (403 if wrong; throttled like a login)."
    )
    new_password: Password = Field(
        description="The new password, under the same rules as at registration."
    )


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105
    #: Seconds until the access token expires.
    expires_in: int = Field(ge=1)


class Me(BaseModel):
    id: UUID
    email: str
    full_name: str
    role: Role
    phone: str | None
    created_at: datetime
    has_cancel_pin: bool = Field(
        default=False,
        description="Whether the user's PINs are set, so cancelling an alert needs a PIN. "
        "The PINs are never shown, nor which of them exist (they are set together).",
    )

    @classmethod
    def of(cls, account: AccountRow) -> Me:
        """What ``GET /auth/me`` and ``/users/profile`` show of an account."""
        return cls(
            id=account.id,
            email=account.email,
            full_name=account.full_name,
            role=account.role,
            phone=account.phone,
            created_at=account.created_at,
            has_cancel_pin=account.has_cancel_pin,
        )


class ProblemError(BaseModel):
    loc: list[str | int]
    msg: str


class Problem(BaseModel):
    """RFC 9457 problem details, as every 4xx/5xx of this API is answered."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    request_id: str | None = None
    errors: list[ProblemError] | None = None


_DESCRIPTIONS = {
    400: "The request cannot be carried out as sent.",
    401: "Missing, invalid, expired or revoked credentials.",
    403: "Authenticated, but this role may not call this endpoint.",
    404: "No such resource (or it belongs to someone else).",
    409: "Conflicts with existing state (e.g. the email is taken).",
    413: "Request body too large.",
    422: "The request is malformed; `errors` lists each offending field.",
    429: "Rate limited; retry after the `Retry-After` header's seconds.",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, object]]:
    """``responses=`` for a route: each status documented as problem details."""
    out: dict[int | str, dict[str, object]] = {}
    for status in statuses:
        entry: dict[str, object] = {
            "model": Problem,
            "description": _DESCRIPTIONS.get(status, "Error."),
            "content": {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            },
        }
        if status in (429, 503):
            entry["headers"] = {
                "Retry-After": {
                    "description": "Seconds to wait before retrying.",
                    "schema": {"type": "integer"},
                }
            }
        out[status] = entry
    return out
