"""``/auth/totp``: an administrator's second factor (TOTP, RFC 6238).

Enrolment is two steps: ``POST /auth/totp/enrolment`` (with the password)
answers a new secret and its ``otpauth://`` URI, once; ``POST
/auth/totp/enrolment/confirm`` with a code from the authenticator turns it on
and answers the single-use recovery codes, once. From then on the
administrator's login needs ``totp_code`` (or a ``recovery_code``); see
``gateway.routes.auth``. ``POST /auth/totp/disable`` (password and a code)
turns it off and ends every session of the account.

Where a second factor is required (``totp.required_for_admins``; by default
the ``prod`` profile), an administrator without one gets a session that may
reach only these endpoints, ``/auth/me`` and logout (403
``totp-enrolment-required`` elsewhere); the next token refresh after the
confirmation lifts that. Enrolling, disabling and each recovery code used
are written to ``audit-logs`` (``persistence.stores.admin_totp``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from uuid import UUID

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field
from starlette.requests import Request

from gateway.auth import totp
from gateway.auth.models import LoginPassword, RequestBody, problem_responses
from gateway.auth.totp import RecoveryCode, TotpCode
from gateway.deps import (
    AdminTotpDep,
    EnrollingAdmin,
    SessionsDep,
    SettingsDep,
)
from gateway.ports import AdminTotp
from gateway.problems import ProblemHTTPException, invalid, problem_type
from gateway.ratelimit import rate_limit
from gateway.routes.auth import PasswordPortsDep, confirm_password, wrong_password

log = logging.getLogger(__name__)

router = APIRouter(prefix="/auth/totp", tags=["auth"])

#: The secret and the recovery codes are shown once: no cache may keep them.
NO_STORE = "no-store"

_limit = Depends(rate_limit("auth:totp", key="ip", rule="login_per_ip"))


class EnrolmentRequest(RequestBody):
    password: LoginPassword = Field(description="The administrator's account password.")


class Enrolment(BaseModel):
    """A new, unconfirmed second factor: shown once, never again."""

    secret: str = Field(description="The base32 TOTP secret (SHA-1, 6 digits, 30-second steps).")
    otpauth_uri: str = Field(
        description="The same secret as an `otpauth://totp/...` URI, for a QR code."
    )


class ConfirmRequest(RequestBody):
    totp_code: TotpCode = Field(description="The current 6-digit code of the authenticator.")


class RecoveryCodes(BaseModel):
    """The second factor is on; these codes are shown once, never again."""

    recovery_codes: list[str] = Field(
        description=(
            "Single-use codes that stand in for `totp_code` at login (as `recovery_code`), "
            "e.g. when the authenticator is lost. Only their hashes are kept."
        )
    )


class DisableRequest(RequestBody):
    password: LoginPassword = Field(description="The administrator's account password.")
    totp_code: TotpCode | None = Field(default=None, description="A current code, or ...")
    recovery_code: RecoveryCode | None = Field(
        default=None, description="... one of the recovery codes (spent)."
    )


class TotpStatus(BaseModel):
    enrolled: bool = Field(description="Whether the second factor is on (confirmed).")
    required: bool = Field(
        description="Whether this deployment requires administrators to have one."
    )
    recovery_codes_left: int = Field(ge=0, description="Unused recovery codes.")


def _conflict(detail: str) -> ProblemHTTPException:
    return ProblemHTTPException(409, detail=detail, type_=problem_type("totp-state"))


@router.get(
    "",
    responses=problem_responses(401, 403),
    summary="Whether the administrator's second factor is on",
)
async def totp_status(
    principal: EnrollingAdmin, settings: SettingsDep, store: AdminTotpDep
) -> TotpStatus:
    enrolment = await store.totp_of(principal.id)
    enrolled = enrolment is not None and enrolment.confirmed
    return TotpStatus(
        enrolled=enrolled,
        required=settings.totp_required_for_admins,
        recovery_codes_left=enrolment.recovery_codes_left if enrolment and enrolled else 0,
    )


@router.post(
    "/enrolment",
    status_code=201,
    dependencies=[_limit],
    responses=problem_responses(401, 403, 409, 422, 429),
    summary="Start enrolling a second factor: a new secret, shown once",
)
async def start_enrolment(
    request: Request,
    response: Response,
    body: EnrolmentRequest,
    principal: EnrollingAdmin,
    settings: SettingsDep,
    ports: PasswordPortsDep,
    store: AdminTotpDep,
) -> Enrolment:
    await confirm_password(request, principal, body.password, settings, ports)
    account = await ports.accounts.get_account(principal.id)
    if account is None:
        raise wrong_password()
    secret = totp.new_secret()
    key = settings.totp.encryption_key.get_secret_value()
    if not await store.start_enrolment(
        principal.id, totp.encrypt_secret(key, principal.id, secret)
    ):
        raise _conflict("A second factor is already on; disable it first.")
    uri = totp.provisioning_uri(secret, account.email, settings.totp.issuer)
    response.headers["Cache-Control"] = NO_STORE
    return Enrolment(secret=secret, otpauth_uri=uri)


@router.post(
    "/enrolment/confirm",
    dependencies=[_limit],
    responses=problem_responses(401, 403, 409, 422, 429),
    summary="Confirm the enrolment with a code: the factor is on; recovery codes, shown once",
)
async def confirm_enrolment(
    response: Response,
    body: ConfirmRequest,
    principal: EnrollingAdmin,
    settings: SettingsDep,
    store: AdminTotpDep,
) -> RecoveryCodes:
    enrolment = await store.totp_of(principal.id)
    if enrolment is None or enrolment.confirmed:
        raise _conflict("No enrolment waits for confirmation; start one first.")
    step = _step(settings, principal.id, enrolment.secret_ciphertext, body.totp_code)
    if step is None:
        raise invalid(("body", "totp_code"), "wrong or expired code")
    codes = totp.new_recovery_codes(settings.totp.recovery_codes)
    hashes = [totp.hash_recovery_code(code) for code in codes]
    at = datetime.now(UTC)
    if not await store.confirm_enrolment(
        principal.id, step=step, recovery_code_hashes=hashes, at=at
    ):
        raise _conflict("No enrolment waits for confirmation; start one first.")
    response.headers["Cache-Control"] = NO_STORE
    return RecoveryCodes(recovery_codes=codes)


@router.post(
    "/disable",
    status_code=204,
    response_class=Response,
    dependencies=[_limit],
    responses=problem_responses(401, 403, 409, 422, 429),
    summary="Turn the second factor off (password and a code); ends every session",
)
async def disable(
    request: Request,
    body: DisableRequest,
    principal: EnrollingAdmin,
    settings: SettingsDep,
    ports: PasswordPortsDep,
    store: AdminTotpDep,
    sessions: SessionsDep,
) -> Response:
    await confirm_password(request, principal, body.password, settings, ports)
    enrolment = await store.totp_of(principal.id)
    if enrolment is None or not enrolment.confirmed:
        raise _conflict("No second factor is on.")
    await _second_factor_of(body, principal.id, enrolment.secret_ciphertext, settings, store)
    await store.disable(principal.id, at=datetime.now(UTC))
    # Sessions opened with the factor must not outlive it.
    await sessions.close_all_sessions(principal.role.value, principal.id)
    return Response(status_code=204)


async def _second_factor_of(
    body: DisableRequest,
    account_id: UUID,
    ciphertext: bytes,
    settings: SettingsDep,
    store: AdminTotp,
) -> None:
    if body.totp_code is not None:
        step = _step(settings, account_id, ciphertext, body.totp_code)
        if step is not None and await store.accept_step(account_id, step):
            return
        raise invalid(("body", "totp_code"), "wrong, expired or already used code")
    if body.recovery_code is not None:
        code_hash = totp.hash_recovery_code(body.recovery_code)
        if await store.use_recovery_code(account_id, code_hash, datetime.now(UTC)):
            return
        raise invalid(("body", "recovery_code"), "unknown or already used recovery code")
    raise invalid(("body", "totp_code"), "give totp_code or recovery_code")


def _step(settings: SettingsDep, account_id: UUID, ciphertext: bytes, code: str) -> int | None:
    key = settings.totp.encryption_key.get_secret_value()
    window = settings.totp.valid_window
    return totp.verified_step(key, account_id, ciphertext, code, datetime.now(UTC), window)
