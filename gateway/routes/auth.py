"""``/auth``: registration, login, token refresh, logout and ``me``.

Roles: public registration creates users and agents only (admins come from
``panic-alert create-admin``). ``/auth/login/user`` accepts users *and*
admins (the portal logs admins in there); ``/auth/login/agent`` accepts only
agents. A login through the wrong endpoint is answered exactly like a wrong
password (401, same text), as is an unknown email, so the endpoints do not
reveal which accounts exist; unknown emails still cost one argon2 verify.

Throttling (``gateway.auth.throttle``): only failed logins count, per email
and client address, with a growing wait after a few, under a high ceiling
per email; a success clears the count. A stranger's failures therefore slow
the stranger, not the owner logging in from elsewhere.

Administrators' second factor (``gateway.routes.totp``): once enrolled, an
administrator's login needs ``totp_code`` (or a ``recovery_code``) after the
password checked out: 401 ``totp-required`` without it, 401 ``totp-invalid``
(a failure) for a wrong or replayed one. Where one is required and missing,
the login opens an enrolment-only session (``Principal.enrolment_only``).

Vetting: a self-registered agent is ``pending``: it may sign in and edit its
profile but not go on duty until an administrator approves it (``/admin``);
one registering with an invite code is approved at once. A suspended agent's
login is refused with 403, only once its password checked out, so the answer
tells nothing to someone without it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Response
from starlette.requests import Request

from gateway.auth import refresh as sessions_flow
from gateway.auth import throttle, totp
from gateway.auth.models import (
    Login,
    LogoutRequest,
    Me,
    PasswordChange,
    RefreshRequest,
    RegisterAgent,
    Registered,
    RegisteredAgent,
    RegisterUser,
    TokenResponse,
    problem_responses,
)
from gateway.auth.passwords import PasswordHasher
from gateway.auth.principal import Principal, Role
from gateway.auth.refresh import RefreshRejected, TokenPair
from gateway.auth.throttle import FailureCounts
from gateway.deps import (
    AccountsDep,
    AdminTotpDep,
    AgentVettingDep,
    HasherDep,
    LoginFailuresDep,
    RefreshTokensDep,
    SessionPrincipal,
    SessionsDep,
    SettingsDep,
    unauthorized,
)
from gateway.ports import (
    Accounts,
    AdminTotp,
    CredentialsRow,
    LoginFailures,
    RefreshTokens,
    Sessions,
    Vetting,
)
from gateway.problems import ProblemHTTPException, invalid, problem_type
from gateway.ratelimit import Decision, client_ip, rate_limit, too_many

log = logging.getLogger(__name__)

router = APIRouter(prefix="/auth", tags=["auth"])

BAD_CREDENTIALS = "invalid email or password"

#: Verified against when the email is unknown, so that case costs the same
#: time as a wrong password. Made lazily with the deployment's parameters.
_DUMMY_HASH_ATTRIBUTE = "dummy_password_hash"

_register_limit = Depends(rate_limit("auth:register", key="ip", rule="register_per_ip"))
_login_limit = Depends(rate_limit("auth:login", key="ip", rule="login_per_ip"))
_refresh_limit = Depends(rate_limit("auth:refresh", key="ip", rule="refresh_per_ip"))


@dataclass(frozen=True, slots=True)
class _LoginPorts:
    failures: LoginFailures
    accounts: Accounts
    tokens: RefreshTokens
    sessions: Sessions
    #: None where no administrator may log in.
    totp: AdminTotp | None


def _pair(pair: TokenPair) -> TokenResponse:
    return TokenResponse(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        expires_in=pair.expires_in,
    )


def normalize_email(email: str) -> str:
    """An email as the accounts store keeps it: stripped and lowercased."""
    return email.strip().lower()


async def _register(
    body: RegisterUser, role: Role, accounts: Accounts, hasher: PasswordHasher, badge: str | None
) -> Registered:
    password_hash = await hasher.hash_async(body.password)
    account_id = await accounts.create_account(
        email=body.email,
        password_hash=password_hash,
        full_name=body.full_name,
        role=role.value,
        phone=body.phone,
        badge_number=badge,
    )
    return Registered(
        id=account_id,
        email=normalize_email(body.email),
        full_name=body.full_name,
        role=role.value,
    )


@router.post(
    "/register/user",
    status_code=201,
    dependencies=[_register_limit],
    responses=problem_responses(409, 422, 429),
    summary="Register a user account",
)
async def register_user(body: RegisterUser, accounts: AccountsDep, hasher: HasherDep) -> Registered:
    return await _register(body, Role.USER, accounts, hasher, None)


@router.post(
    "/register/agent",
    status_code=201,
    dependencies=[_register_limit],
    responses=problem_responses(409, 422, 429),
    summary="Register an agent account (pending approval unless an invite code is given)",
)
async def register_agent(
    body: RegisterAgent, accounts: AccountsDep, vetting: AgentVettingDep, hasher: HasherDep
) -> RegisteredAgent:
    if body.invite_code is None:
        made = await _register(body, Role.AGENT, accounts, hasher, body.badge_number)
        return RegisteredAgent(**made.model_dump(), vetting=Vetting.PENDING)
    password_hash = await hasher.hash_async(body.password)
    account_id = await vetting.create_invited_agent(
        body.invite_code,
        email=body.email,
        password_hash=password_hash,
        full_name=body.full_name,
        phone=body.phone,
        badge_number=body.badge_number,
        at=datetime.now(UTC),
    )
    if account_id is None:
        raise invalid(("body", "invite_code"), "unknown, already used or expired invite code")
    return RegisteredAgent(
        id=account_id,
        email=normalize_email(body.email),
        full_name=body.full_name,
        role=Role.AGENT,
        vetting=Vetting.APPROVED,
    )


async def _dummy_hash(request: Request, hasher: PasswordHasher) -> str:
    existing = getattr(request.app.state, _DUMMY_HASH_ATTRIBUTE, None)
    if isinstance(existing, str):
        return existing
    made = await hasher.hash_async("timing-equaliser-not-a-password")
    setattr(request.app.state, _DUMMY_HASH_ATTRIBUTE, made)
    return made


async def throttle_login(
    request: Request, email: str, settings: SettingsDep, failures: LoginFailures
) -> tuple[str, str] | None:
    """Refuse (429) a login whose email+address pair owes a wait, or whose email
    is past the ceiling; else the pair's and the email's identifiers (None when
    rate limits are off)."""
    if not settings.rate_limit.enabled:
        return None
    prefix = settings.rate_limit.key_prefix
    keys = (
        throttle.pair_identifier(prefix, email, client_ip(request)),
        throttle.email_identifier(prefix, email),
    )
    counts = await failures.counts(*keys)
    verdict = throttle.decide_login(
        FailureCounts(counts.pair, counts.pair_last_at, counts.email, counts.email_ttl_s),
        time.time(),
        settings.login_throttle,
    )
    if not verdict.allowed:
        raise too_many(Decision(False, 0, verdict.retry_after_s))
    return keys


async def count_failure(
    keys: tuple[str, str] | None, settings: SettingsDep, failures: LoginFailures
) -> None:
    if keys is None:
        return
    limits = settings.login_throttle
    await failures.record_failure(
        *keys,
        at=time.time(),
        pair_ttl_s=limits.memory_s,
        email_window_s=limits.per_email_ceiling.window_s,
    )


def totp_required() -> ProblemHTTPException:
    return ProblemHTTPException(
        401,
        title="Second factor required",
        detail="This account needs the code of its authenticator: send `totp_code`.",
        type_=problem_type("totp-required"),
        headers={"WWW-Authenticate": "Bearer"},
    )


def totp_invalid() -> ProblemHTTPException:
    return ProblemHTTPException(
        401,
        title="Second factor refused",
        detail="The code is wrong, expired or already used.",
        type_=problem_type("totp-invalid"),
        headers={"WWW-Authenticate": "Bearer"},
    )


async def _second_factor(
    body: Login,
    account_id: UUID,
    role: Role,
    settings: SettingsDep,
    ports: _LoginPorts,
    keys: tuple[str, str] | None,
) -> bool:
    """Check an administrator's second factor, once the password checked out.

    Answers whether the session may only enrol one (an administrator who must
    have one and has none). Raises 401 ``totp-required`` without a code (not
    a failure: it is the login's first step) and ``totp-invalid`` for a wrong,
    expired or replayed one (a failure, counted like a wrong password).
    """
    if role is not Role.ADMIN or ports.totp is None:
        return False
    enrolment = await ports.totp.totp_of(account_id)
    if enrolment is None or not enrolment.confirmed:
        return totp.enrolment_only(role, settings.totp_required_for_admins, enrolled=False)
    now = datetime.now(UTC)
    if body.totp_code is not None:
        step = _matching_step(settings, account_id, enrolment.secret_ciphertext, body.totp_code)
        if step is not None and await ports.totp.accept_step(account_id, step):
            return False
    elif body.recovery_code is not None:
        code_hash = totp.hash_recovery_code(body.recovery_code)
        if await ports.totp.use_recovery_code(account_id, code_hash, now):
            return False
    else:
        raise totp_required()
    await count_failure(keys, settings, ports.failures)
    raise totp_invalid()


def _matching_step(
    settings: SettingsDep, account_id: UUID, ciphertext: bytes, code: str
) -> int | None:
    key = settings.totp.encryption_key.get_secret_value()
    window = settings.totp.valid_window
    return totp.verified_step(key, account_id, ciphertext, code, datetime.now(UTC), window)


async def _login(
    request: Request,
    body: Login,
    allowed: frozenset[Role],
    settings: SettingsDep,
    ports: _LoginPorts,
    hasher: PasswordHasher,
) -> TokenResponse:
    """Check the credentials. Failures are counted per email and address
    (``gateway.auth.throttle``); the 401 of every failure is the same."""
    email = normalize_email(body.email)
    keys = await throttle_login(request, email, settings, ports.failures)
    found = await ports.accounts.find_credentials(body.email)
    if found is None:
        await hasher.verify_async(await _dummy_hash(request, hasher), body.password)
        await count_failure(keys, settings, ports.failures)
        raise unauthorized(BAD_CREDENTIALS)
    if not await hasher.verify_async(found.password_hash, body.password):
        await count_failure(keys, settings, ports.failures)
        raise unauthorized(BAD_CREDENTIALS)
    role = found.role
    if found.disabled or role not in allowed:
        log.info("login refused: account=%s role=%s ip=%s", found.id, role, client_ip(request))
        await count_failure(keys, settings, ports.failures)
        raise unauthorized(BAD_CREDENTIALS)
    if found.vetting == Vetting.SUSPENDED:
        log.info("login refused: suspended agent=%s ip=%s", found.id, client_ip(request))
        raise ProblemHTTPException(
            403,
            title="Agent account suspended",
            detail="This agent account is suspended by an administrator; it may not sign in.",
            type_=problem_type("agent-suspended"),
        )
    enrolment_only = await _second_factor(body, found.id, role, settings, ports, keys)
    if hasher.needs_rehash(found.password_hash):
        upgraded = await hasher.hash_async(body.password)
        await ports.accounts.replace_password_hash(found.id, found.password_hash, upgraded)
    pair = await sessions_flow.start_session(
        ports.tokens,
        ports.sessions,
        settings.auth,
        account_id=found.id,
        role=role,
        enrolment_only=enrolment_only,
    )
    if keys is not None:
        await ports.failures.clear(keys[0])
    return _pair(pair)


@router.post(
    "/login/user",
    dependencies=[_login_limit],
    responses={
        **problem_responses(401, 422, 429),
        401: {
            **problem_responses(401)[401],
            "description": (
                "Wrong email or password (`about:blank`), or an administrator's second factor "
                "missing (`totp-required`: send `totp_code`) or refused (`totp-invalid`)."
            ),
        },
    },
    summary="Log in as a user (or an administrator)",
)
async def login_user(
    request: Request,
    body: Login,
    settings: SettingsDep,
    failures: LoginFailuresDep,
    accounts: AccountsDep,
    tokens: RefreshTokensDep,
    sessions: SessionsDep,
    hasher: HasherDep,
    admin_totp: AdminTotpDep,
) -> TokenResponse:
    allowed = frozenset({Role.USER, Role.ADMIN})
    ports = _LoginPorts(failures, accounts, tokens, sessions, admin_totp)
    return await _login(request, body, allowed, settings, ports, hasher)


@router.post(
    "/login/agent",
    dependencies=[_login_limit],
    responses={
        **problem_responses(401, 422, 429),
        403: {**problem_responses(403)[403], "description": "The agent account is suspended."},
    },
    summary="Log in as an agent",
)
async def login_agent(
    request: Request,
    body: Login,
    settings: SettingsDep,
    failures: LoginFailuresDep,
    accounts: AccountsDep,
    tokens: RefreshTokensDep,
    sessions: SessionsDep,
    hasher: HasherDep,
) -> TokenResponse:
    allowed = frozenset({Role.AGENT})
    ports = _LoginPorts(failures, accounts, tokens, sessions, None)
    return await _login(request, body, allowed, settings, ports, hasher)


@router.post(
    "/refresh",
    dependencies=[_refresh_limit],
    responses=problem_responses(401, 422, 429),
    summary="Exchange a refresh token for a new token pair (the old one is spent)",
    description=(
        "401 if the token is unknown, expired, spent (its whole family is then revoked) "
        "or revoked, including by a logout that ran at the same time."
    ),
)
async def refresh(
    body: RefreshRequest,
    settings: SettingsDep,
    tokens: RefreshTokensDep,
    sessions: SessionsDep,
    admin_totp: AdminTotpDep,
) -> TokenResponse:
    async def enrolment_only(account_id: UUID, role: Role) -> bool:
        if role is not Role.ADMIN or not settings.totp_required_for_admins:
            return False
        enrolment = await admin_totp.totp_of(account_id)
        enrolled = enrolment is not None and enrolment.confirmed
        return totp.enrolment_only(role, required=True, enrolled=enrolled)

    try:
        pair = await sessions_flow.rotate_session(
            tokens, sessions, settings.auth, body.refresh_token, enrolment_only=enrolment_only
        )
    except RefreshRejected:
        raise unauthorized("invalid refresh token") from None
    return _pair(pair)


@router.post(
    "/logout",
    status_code=204,
    response_class=Response,
    responses=problem_responses(401, 422),
    summary="End this session: its access and refresh tokens stop working",
)
async def logout(
    principal: SessionPrincipal,
    tokens: RefreshTokensDep,
    sessions: SessionsDep,
    body: LogoutRequest | None = None,
) -> Response:
    await sessions_flow.end_session(
        tokens, sessions, principal, refresh_token=body.refresh_token if body else None
    )
    return Response(status_code=204)


def wrong_password() -> ProblemHTTPException:
    return ProblemHTTPException(
        403,
        title="Wrong password",
        detail="The password is not this account's.",
        type_=problem_type("wrong-password"),
    )


@dataclass(frozen=True, slots=True)
class PasswordPorts:
    """What :func:`confirm_password` reads: the account, the hasher, the throttle."""

    accounts: Accounts
    hasher: PasswordHasher
    failures: LoginFailures


def _password_ports(
    accounts: AccountsDep, hasher: HasherDep, failures: LoginFailuresDep
) -> PasswordPorts:
    return PasswordPorts(accounts, hasher, failures)


PasswordPortsDep = Annotated[PasswordPorts, Depends(_password_ports)]


async def confirm_password(
    request: Request,
    principal: Principal,
    password: str,
    settings: SettingsDep,
    ports: PasswordPorts,
) -> CredentialsRow:
    """The caller's credentials, once ``password`` is theirs (a stolen token is
    not enough): 403 ``wrong-password`` otherwise. Throttled and counted like a
    login (``gateway.auth.throttle``)."""
    account = await ports.accounts.get_account(principal.id)
    if account is None:
        raise wrong_password()
    email = normalize_email(account.email)
    keys = await throttle_login(request, email, settings, ports.failures)
    found = await ports.accounts.find_credentials(email)
    if (
        found is None
        or found.id != principal.id
        or not await ports.hasher.verify_async(found.password_hash, password)
    ):
        log.info("wrong password for %s %s", principal.role.value, principal.id)
        await count_failure(keys, settings, ports.failures)
        raise wrong_password()
    return found


@router.post(
    "/password",
    status_code=204,
    response_class=Response,
    responses=problem_responses(401, 403, 409, 422, 429),
    summary="Change the caller's password: every session of the account ends",
    description="Needs the current password (403 if wrong; failures are throttled like "
    "logins: 429 with `Retry-After`). On success every session of the account ends, this "
    "one included: its refresh tokens are revoked with the change, its access tokens stop "
    "working and its open `/ws` sockets close with 4401. Log in again with the new "
    "password. 409 if the password changed meanwhile.",
)
async def change_password(
    request: Request,
    body: PasswordChange,
    principal: SessionPrincipal,
    settings: SettingsDep,
    ports: PasswordPortsDep,
    sessions: SessionsDep,
) -> Response:
    found = await confirm_password(request, principal, body.current_password, settings, ports)
    new_hash = await ports.hasher.hash_async(body.new_password)
    if not await ports.accounts.change_password(
        principal.id, found.password_hash, new_hash, datetime.now(UTC)
    ):
        raise ProblemHTTPException(
            409, detail="The password changed meanwhile; try again.", type_=problem_type("conflict")
        )
    # Committed (refresh families revoked with it): now every session and socket ends.
    closed = await sessions.close_all_sessions(principal.role.value, principal.id)
    log.info(
        "password changed: account=%s role=%s, %d sessions ended",
        principal.id,
        principal.role,
        closed,
    )
    return Response(status_code=204)


@router.get("/me", responses=problem_responses(401), summary="The caller's account")
async def me(principal: SessionPrincipal, accounts: AccountsDep) -> Me:
    account = await accounts.get_account(principal.id)
    if account is None:
        raise unauthorized("account no longer exists")
    return Me.of(account)
