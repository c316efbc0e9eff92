"""The demo's accounts: its state file, its administrator, and its responders'
and users' sign-in (registering the missing ones), through the API only.

The state file (``<data dir>/demo/state.json``, mode 0600) keeps one random
password shared by every demo account, the demo users' PINs, the demo
administrator's credentials and which demo accounts were registered, so a
rerun signs the same accounts in instead of registering new ones. It holds
secrets of throwaway demo accounts on a demo server: that is all it is for.

Registrations and logins are limited per client address
(``rate_limit.register_per_ip``, ``login_per_ip``): every 429 is waited out
as its ``Retry-After`` says, with a line on stderr saying so (and how to
start a demo server with room for a large demo).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO, TypeVar

from panic_alert.demo import plan
from panic_alert_client import AsyncClient, Conflict, RateLimited, TransportError, Unauthorized

T = TypeVar("T")

#: Attempts of a call whose connection broke before any answer.
TRANSPORT_ATTEMPTS = 3

#: How many sign-ins run at once (each costs the server an argon2 hash).
SETUP_CONCURRENCY = 8

#: Printed once when the server's per-address limits make the demo wait.
SERVER_HINT = (
    "the server limits registrations and logins per address; for a large demo start it "
    'with room for them, e.g. PANIC_RATE_LIMIT__REGISTER_PER_IP=\'{"limit":1000,'
    '"window_s":3600}\' PANIC_RATE_LIMIT__LOGIN_PER_IP=\'{"limit":1000,"window_s":60}\' '
    "(see panic-alert demo --help)"
)


class DemoError(Exception):
    """A failure that ends the demo with one line on stderr (exit code 1)."""


@dataclass
class DemoState:
    """What the state file keeps (see the module's docstring)."""

    password: str
    cancel_pin: str
    duress_pin: str
    admin_email: str | None = None
    admin_password: str | None = None
    registered: set[str] = field(default_factory=set)

    @classmethod
    def new(cls) -> DemoState:
        cancel, duress = plan.new_pins(random.SystemRandom())
        return cls(password=secrets.token_urlsafe(18), cancel_pin=cancel, duress_pin=duress)

    def to_json(self) -> dict[str, object]:
        return {
            "password": self.password,
            "cancel_pin": self.cancel_pin,
            "duress_pin": self.duress_pin,
            "admin_email": self.admin_email,
            "admin_password": self.admin_password,
            "registered": sorted(self.registered),
        }


class StateFile:
    """The state file; ``save`` replaces it atomically (write, fsync, rename)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> DemoState:
        """The saved state, or a new one (not saved yet) when there is none."""
        if not self.path.exists():
            return DemoState.new()
        try:
            raw = json.loads(self.path.read_text())
            return DemoState(
                password=str(raw["password"]),
                cancel_pin=str(raw["cancel_pin"]),
                duress_pin=str(raw["duress_pin"]),
                admin_email=raw.get("admin_email"),
                admin_password=raw.get("admin_password"),
                registered={str(email) for email in raw.get("registered", [])},
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DemoError(f"cannot read {self.path}: {exc} (delete it to start afresh)") from exc

    def save(self, state: DemoState) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as out:
            json.dump(state.to_json(), out, indent=1)
            out.flush()
            os.fsync(out.fileno())
        temporary.replace(self.path)


def first_failure(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The exception to report from a group: a :class:`DemoError` when there is one."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        exc = pending.pop(0)
        if isinstance(exc, BaseExceptionGroup):
            pending.extend(exc.exceptions)
        else:
            leaves.append(exc)
    return next((exc for exc in leaves if isinstance(exc, DemoError)), leaves[0])


#: Creates an administrator account (email, password) as ``create-admin`` does.
MakeAdmin = Callable[[str, str], Awaitable[None]]


@dataclass(frozen=True)
class Account:
    """A signed-in demo account."""

    number: int
    email: str
    client: AsyncClient


class Accounts:
    """Signs the demo's accounts in, registering the missing ones."""

    def __init__(
        self,
        url: str,
        state: DemoState,
        state_file: StateFile,
        *,
        err: TextIO,
        stopping: asyncio.Event,
    ) -> None:
        self._url = url
        self._state = state
        self._file = state_file
        self._err = err
        self._stopping = stopping
        self._hinted = False
        self._invites = asyncio.Lock()
        self._admin: AsyncClient | None = None

    def say(self, line: str) -> None:
        print(f"demo: {line}", file=self._err, flush=True)

    async def patiently(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """``call()``, again after each 429 once its ``Retry-After`` has passed, and
        after a broken connection (up to ``TRANSPORT_ATTEMPTS`` in all: a repeated
        registration is a 409, which the caller reads as "registered")."""
        broken = 0
        while True:
            try:
                return await call()
            except TransportError:
                broken += 1
                if broken >= TRANSPORT_ATTEMPTS:
                    raise
                await asyncio.sleep(0.5 * broken)
                continue
            except RateLimited as exc:
                wait = exc.retry_after if exc.retry_after is not None else 5.0
                if not self._hinted:
                    self._hinted = True
                    self.say(SERVER_HINT)
                self.say(f"{what}: rate limited by the server; retrying in {wait:.0f}s")
                try:
                    await asyncio.wait_for(self._stopping.wait(), wait)
                except TimeoutError:
                    continue
                raise DemoError(f"{what}: stopped while waiting for the rate limit") from exc

    async def admin(
        self, email: str | None, password: str | None, make_admin: MakeAdmin
    ) -> AsyncClient:
        """The administrator's session: the given one, else the demo's own
        (created through ``make_admin`` the first time, kept in the state file)."""
        client = AsyncClient(self._url)
        try:
            if email is not None and password is not None:
                await self.patiently("admin login", lambda: client.login_user(email, password))
            else:
                await self._own_admin(client, make_admin)
        except BaseException:
            await client.aclose()
            raise
        self._admin = client
        return client

    async def _own_admin(self, client: AsyncClient, make_admin: MakeAdmin) -> None:
        state = self._state
        if state.admin_email is None or state.admin_password is None:
            state.admin_email = plan.demo_email("admin", 1)
            state.admin_password = secrets.token_urlsafe(24)
            self._file.save(state)  # before the account exists: never a password lost
        email, password = state.admin_email, state.admin_password
        try:
            await self.patiently("admin login", lambda: client.login_user(email, password))
            return
        except Unauthorized:
            pass
        try:
            await make_admin(email, password)
        except Exception as exc:
            raise DemoError(
                f"cannot create the demo administrator {email}: {exc}; its password is not in "
                f"{self._file.path}: pass --admin-email and --admin-password"
            ) from exc
        self.say(f"created the demo administrator {email} (password in {self._file.path})")
        await self.patiently("admin login", lambda: client.login_user(email, password))

    async def sign_in_all(self, kind: str, count: int) -> list[Account]:
        """Accounts 1..``count`` of ``kind`` (``responder`` or ``user``), signed in."""
        gate = asyncio.Semaphore(SETUP_CONCURRENCY)
        done = 0

        async def one(number: int) -> Account:
            nonlocal done
            async with gate:
                if self._stopping.is_set():
                    raise DemoError("stopped during the accounts' setup")
                account = await self._sign_in(kind, number)
            done += 1
            if done == count or done % 25 == 0:
                self.say(f"{done}/{count} {kind}s signed in")
            return account

        tasks: list[asyncio.Task[Account]] = []
        try:
            async with asyncio.TaskGroup() as group:
                tasks.extend(group.create_task(one(n)) for n in range(1, count + 1))
        except BaseExceptionGroup as failed:
            # The others were cancelled (closing their clients); close the signed-in.
            signed_in = [
                t.result()
                for t in tasks
                if t.done() and not t.cancelled() and t.exception() is None
            ]
            await asyncio.gather(*(a.client.aclose() for a in signed_in), return_exceptions=True)
            raise first_failure(failed) from None
        return [task.result() for task in tasks]

    async def _sign_in(self, kind: str, number: int) -> Account:
        email = plan.demo_email(kind, number)
        password = self._state.password
        client = AsyncClient(self._url)
        try:
            login = client.login_agent if kind == "responder" else client.login_user
            signed_in = False
            if email in self._state.registered:
                try:
                    await self.patiently(f"login {email}", lambda: login(email, password))
                    signed_in = True
                except Unauthorized:
                    pass  # registered on another database: register here
            if not signed_in:
                await self._register(kind, number, email, client)
                try:
                    await self.patiently(f"login {email}", lambda: login(email, password))
                except Unauthorized as exc:
                    raise DemoError(
                        f"{email} exists with another password than the one in "
                        f"{self._file.path}: use a fresh database or data dir"
                    ) from exc
            if kind == "user":
                await self._ensure_pins(client, number)
        except BaseException:
            await client.aclose()
            raise
        return Account(number, email, client)

    async def _register(self, kind: str, number: int, email: str, client: AsyncClient) -> None:
        password = self._state.password
        name = f"Demo {kind.title()} {number:04d}"
        try:
            if kind == "responder":
                code = await self._invite()
                await self.patiently(
                    f"register {email}",
                    lambda: client.register_agent(
                        email, password, name, badge_number=f"DEMO-{number:04d}", invite_code=code
                    ),
                )
            else:
                await self.patiently(
                    f"register {email}", lambda: client.register_user(email, password, name)
                )
        except Conflict:
            pass  # registered by a run whose state was not saved: its login says if it is ours
        self._state.registered.add(email)
        self._file.save(self._state)

    async def _invite(self) -> str:
        admin = self._admin
        if admin is None:
            raise DemoError("no administrator session to make invite codes with")
        async with self._invites:
            invite = await self.patiently("agent invite", admin.create_invite)
        return invite.code

    async def _ensure_pins(self, client: AsyncClient, number: int) -> None:
        """Give the user the demo's cancel and duress PINs unless they have PINs."""
        profile = await self.patiently("profile", client.get_profile)
        if profile.has_cancel_pin:
            return
        await self.patiently(
            "set PINs",
            lambda: client.update_profile(
                profile.full_name,
                phone=profile.phone,
                cancel_pin=self._state.cancel_pin,
                duress_pin=self._state.duress_pin,
                password=self._state.password,
            ),
        )
