"""panic_alert_client against the live gateway: REST (async and sync), the
socket's offer-to-resolved flow, reconnect with resync, refresh and errors.

Everything goes through the real app over loopback HTTP and WebSocket; the
client imports nothing of the server. The sync client runs in a thread: the
gateway is served by this test's own event loop.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import AsyncIterator, Callable
from typing import TypeVar
from uuid import UUID

import asyncpg
import pytest

from config.settings import Settings
from gateway.auth.principal import Role
from panic_alert_client import (
    Ack,
    AlertAssigned,
    AlertEta,
    AlertMessage,
    AlertOffer,
    AsyncClient,
    AsyncSocket,
    AuthOk,
    Client,
    FrameRefused,
    NotFound,
    ServerFrame,
    SessionEnded,
    Tokens,
    ValidationFailed,
)
from tests.integration.api.accounts import make_account
from tests.integration.api.conftest import Gateway
from tests.integration.api.test_alerts import random_point

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery staple 42"
F = TypeVar("F", bound=ServerFrame)


def email() -> str:
    return f"client-{uuid.uuid4().hex[:12]}@example.org"


@pytest.fixture
async def api(gateway: Gateway) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(gateway.base_url) as client:
        yield client


@pytest.fixture
async def admin_api(
    gateway: Gateway, api_pool: asyncpg.Pool, api_settings: Settings
) -> AsyncIterator[AsyncClient]:
    """An administrator's client (admins come from the CLI, never registration)."""
    admin = await make_account(api_pool, api_settings, Role.ADMIN)
    tokens = Tokens(access_token=admin.token, refresh_token="not-issued", expires_in=900)
    async with AsyncClient(gateway.base_url, tokens=tokens) as client:
        yield client


async def signed_in_user(base_url: str) -> AsyncClient:
    client = AsyncClient(base_url)
    address = email()
    await client.register_user(address, PASSWORD, "Client User")
    await client.login_user(address, PASSWORD)
    return client


async def on_duty_agent(base_url: str, admin_api: AsyncClient) -> AsyncClient:
    """A registered agent (pending), approved through the admin endpoints, signed in."""
    client = AsyncClient(base_url)
    address = email()
    badge = f"B-{uuid.uuid4().hex[:8]}"
    registered = await client.register_agent(address, PASSWORD, "Client Agent", badge_number=badge)
    assert (registered.role, registered.vetting) == ("agent", "pending")
    approved = await admin_api.approve_agent(registered.id, reason="checked")
    assert (approved.agent_id, approved.vetting, approved.changed) == (
        registered.id,
        "approved",
        True,
    )
    await client.login_agent(address, PASSWORD)
    return client


async def next_frame(
    socket: AsyncSocket, kind: type[F], match: Callable[[F], bool] = lambda f: True
) -> F:
    """The next frame of ``kind`` that ``match``es (others are skipped), within 15 s."""
    async with asyncio.timeout(15):
        async for frame in socket:
            if isinstance(frame, kind) and match(frame):
                return frame
    raise AssertionError("the socket ended")


async def go_available(socket: AsyncSocket, at: tuple[float, float]) -> None:
    await socket.location(at[0], at[1], accuracy_m=5.0)
    ack = await socket.agent_status("available")
    assert (ack.acked_type, ack.status) == ("agent.status", "available")
    await socket.ping()


async def test_the_async_client_signs_up_adds_a_contact_and_raises_one_alert_per_key(
    api: AsyncClient,
) -> None:
    address = email()
    account = await api.register_user(address, PASSWORD, "Ada Client", phone="+14155550100")
    assert (account.email, account.role, account.full_name) == (address, "user", "Ada Client")
    tokens = await api.login_user(address, PASSWORD)
    assert api.tokens == tokens
    assert tokens.token_type == "bearer"
    assert (await api.me()).id == account.id

    contact = await api.add_contact("Grace", phone="+14155550101", relationship="sister")
    assert contact.notify_via == ("sms",)
    assert [c.id for c in await api.list_contacts()] == [contact.id]
    changed = await api.update_contact(contact.id, "Grace H", email="grace@example.org")
    assert (changed.name, changed.phone, changed.notify_via) == ("Grace H", None, ("email",))

    lat, lon = random_point()
    key = str(uuid.uuid4())
    first = await api.raise_alert(lat, lon, "medical", accuracy_m=8.0, idempotency_key=key)
    again = await api.raise_alert(lat, lon, "medical", accuracy_m=8.0, idempotency_key=key)
    assert again.alert.id == first.alert.id
    assert (first.replayed, again.replayed, again.idempotency_key) == (False, True, key)
    alert = first.alert
    assert (alert.user_id, alert.alert_type, alert.latitude) == (account.id, "medical", lat)
    assert alert.is_open

    assert [a.id async for a in api.list_alerts(page_size=1)] == [alert.id]
    assert (await api.get_alert(alert.id)).status == alert.status
    timeline = await api.timeline(alert.id)
    assert timeline[0].type == "created"
    cancelled = await api.set_status(alert.id, "cancelled", note="false alarm")
    assert cancelled.status == "cancelled"
    assert not cancelled.is_open
    await api.delete_contact(contact.id)
    assert await api.list_contacts() == ()


async def test_the_sync_client_does_the_same_on_httpx_client(gateway: Gateway) -> None:
    lat, lon = random_point()

    def journey() -> tuple[UUID, UUID, bool, list[str]]:
        with Client(gateway.base_url) as api:
            address = email()
            account = api.register_user(address, PASSWORD, "Sync User")
            api.login_user(address, PASSWORD)
            assert api.me().email == address
            profile = api.update_profile("Sync User Renamed", phone="+14155550102")
            assert (profile.full_name, profile.phone) == ("Sync User Renamed", "+14155550102")
            contact = api.add_contact("Linus", email="linus@example.org")
            assert api.get_contact(contact.id).email == "linus@example.org"
            key = str(uuid.uuid4())
            first = api.raise_alert(lat, lon, idempotency_key=key)
            again = api.raise_alert(lat, lon, idempotency_key=key)
            assert again.alert.id == first.alert.id
            fix = api.post_location(lat, lon, accuracy_m=10.0)
            assert fix.subject_id == account.id
            types = [item.type for item in api.timeline(first.alert.id)]
            assert [a.id for a in api.list_alerts()] == [first.alert.id]
            api.set_status(first.alert.id, "cancelled")
            return account.id, first.alert.user_id, again.replayed, types

        raise AssertionError("unreachable")

    account_id, alert_user, replayed, types = await asyncio.to_thread(journey)
    assert alert_user == account_id
    assert replayed
    assert types[0] == "created"


async def test_an_agent_socket_takes_an_offer_through_to_resolved(
    gateway: Gateway, admin_api: AsyncClient
) -> None:
    user = await signed_in_user(gateway.base_url)
    agent = await on_duty_agent(gateway.base_url, admin_api)
    lat, lon = random_point()
    socket = agent.socket(auto_ack_offers=False)
    try:
        auth = await socket.connect()
        assert auth.role == "agent"
        assert auth.heartbeat_timeout_s > 0
        assert (await agent.me()).id == auth.account_id
        await go_available(socket, (lat + 0.001, lon))

        raised = (await user.raise_alert(lat, lon, "fire", description="door code 1234")).alert
        offer = await next_frame(socket, AlertOffer, lambda f: f.alert_id == raised.id)
        # An offer is coarse and has no description (offer privacy).
        assert offer.alert_type == "fire"
        assert offer.position_precision_m is not None
        assert "description" not in offer.data or offer.data["description"] is None
        await socket.offer_received(offer.alert_id)
        accepted = await socket.accept(offer.alert_id)
        assert (accepted.alert_id, accepted.status) == (raised.id, "assigned")
        assigned = await next_frame(socket, AlertAssigned, lambda f: f.alert_id == raised.id)
        assert (assigned.latitude, assigned.description) == (lat, "door code 1234")

        for status in ("en_route", "on_scene", "resolved"):
            ack = await socket.alert_status(raised.id, status, note=f"now {status}")
            assert isinstance(ack, Ack)
            assert ack.status == status
        seen = await user.get_alert(raised.id)
        assert (seen.status, seen.assigned_agent_id) == ("resolved", auth.account_id)
        steps = [item.type for item in await user.timeline(raised.id)]
        # The app's own acknowledgement is in the timeline, before the acceptance.
        assert steps[:4] == ["created", "offered", "offer_received", "accepted"]
        assert steps.count("status_changed") == 3
        roster = [a async for a in admin_api.list_agents(status="approved")]
        assert auth.account_id in {a.id for a in roster}
    finally:
        await socket.close()
        await user.aclose()
        await agent.aclose()


async def test_a_dropped_socket_reconnects_resyncs_and_still_gets_offers(
    gateway: Gateway, admin_api: AsyncClient
) -> None:
    user = await signed_in_user(gateway.base_url)
    agent = await on_duty_agent(gateway.base_url, admin_api)
    lat, lon = random_point()
    resynced = asyncio.Event()
    resync_status: list[str] = []

    async def on_resync(socket: AsyncSocket) -> None:
        # What an app does after a reconnect: read its state again over REST.
        resync_status.append((await agent.me()).role)
        resynced.set()

    socket = agent.socket(on_resync=on_resync)
    try:
        await socket.connect()
        await go_available(socket, (lat, lon + 0.001))
        # The network drops: the TCP connection dies without a close frame.
        first = socket._ws
        assert first is not None
        first.transport.abort()
        async with asyncio.timeout(15):
            await resynced.wait()
        again = await next_frame(socket, AuthOk)
        assert socket.reconnects == 1
        assert socket._ws is not first
        assert resync_status == ["agent"]
        assert again.role == "agent"

        # The status was said again on the new socket (ack of the resent frame).
        await next_frame(socket, Ack, lambda a: a.ref == "resync" and a.status == "available")
        await socket.location(lat, lon + 0.001)
        raised = (await user.raise_alert(lat, lon, "panic")).alert
        offer = await next_frame(socket, AlertOffer, lambda f: f.alert_id == raised.id)
        assert offer.alert_id == raised.id
        await user.set_status(raised.id, "cancelled")
    finally:
        await socket.close()
        await user.aclose()
        await agent.aclose()


async def test_a_401_is_refreshed_once_and_a_spent_refresh_token_ends_the_session(
    gateway: Gateway,
) -> None:
    seen: list[Tokens | None] = []
    api = AsyncClient(gateway.base_url, on_tokens=seen.append)
    try:
        address = email()
        await api.register_user(address, PASSWORD, "Refresh User")
        issued = await api.login_user(address, PASSWORD)
        # The access token no longer works (as when it expires): one refresh, then the call.
        api.set_tokens(Tokens("not-a-valid-token", issued.refresh_token, issued.expires_in))
        assert (await api.me()).email == address
        fresh = api.tokens
        assert fresh is not None
        assert fresh.refresh_token != issued.refresh_token
        assert seen[-1] == fresh

        # A socket whose auth is refused refreshes first (as after a 4401 "token expired").
        api.set_tokens(Tokens("not-a-valid-token", fresh.refresh_token, fresh.expires_in))
        socket = api.socket()
        auth = await socket.connect()
        await socket.close()
        assert auth.role == "user"
        assert api.tokens is not None
        assert api.tokens.refresh_token != fresh.refresh_token
        fresh = api.tokens

        # Presenting a spent refresh token: refused, and the session is over.
        api.set_tokens(Tokens("not-a-valid-token", issued.refresh_token, issued.expires_in))
        with pytest.raises(SessionEnded) as ended:
            await api.me()
        assert ended.value.status == 401
        assert api.tokens is None
        assert seen[-1] is None
        # Reuse revoked the whole family: the pair refreshed a moment ago is dead too.
        api.set_tokens(fresh)
        with pytest.raises(SessionEnded):
            await api.me()
    finally:
        await api.aclose()


async def test_a_socket_whose_session_is_logged_out_ends_with_session_ended(
    gateway: Gateway,
) -> None:
    user = await signed_in_user(gateway.base_url)
    socket = user.socket()
    try:
        auth = await socket.connect()
        assert auth.role == "user"
        await user.logout()
        with pytest.raises(SessionEnded):
            await next_frame(socket, AlertOffer)  # the socket closes 4401; no refresh works
        assert not socket.connected
    finally:
        await socket.close()
        await user.aclose()


async def test_api_errors_carry_the_problem_details(api: AsyncClient) -> None:
    address = email()
    await api.register_user(address, PASSWORD, "Error User")
    await api.login_user(address, PASSWORD)

    with pytest.raises(ValidationFailed) as invalid:
        await api.raise_alert(200.0, 0.0, "panic")
    problem = invalid.value
    assert problem.status == 422
    assert problem.title
    assert problem.detail
    assert problem.type.endswith("validation")
    assert any("latitude" in error.loc for error in problem.errors)
    assert not problem.retriable
    assert problem.request_id

    with pytest.raises(NotFound) as missing:
        await api.get_alert(uuid.uuid4())
    assert missing.value.status == 404
    assert missing.value.title
    assert missing.value.retry_after is None


async def test_chat_and_the_arrival_estimate_through_the_client(
    gateway: Gateway, admin_api: AsyncClient
) -> None:
    user = await signed_in_user(gateway.base_url)
    agent = await on_duty_agent(gateway.base_url, admin_api)
    lat, lon = random_point()
    agent_socket = agent.socket()
    user_socket = user.socket()
    try:
        await agent_socket.connect()
        await user_socket.connect()
        await go_available(agent_socket, (lat + 0.001, lon))
        raised = (await user.raise_alert(lat, lon, "medical")).alert
        offer = await next_frame(agent_socket, AlertOffer, lambda f: f.alert_id == raised.id)
        await agent_socket.accept(offer.alert_id)

        sent = await user_socket.message(raised.id, "Third floor, flat 12")
        assert (sent.acked_type, sent.alert_id) == ("alert.message", raised.id)
        assert sent.message_id is not None
        heard = await next_frame(
            agent_socket, AlertMessage, lambda f: f.message_id == sent.message_id
        )
        assert (heard.sender_role, heard.text) == ("user", "Third floor, flat 12")

        answer = await agent_socket.message(raised.id, "On my way")
        back = await next_frame(
            user_socket, AlertMessage, lambda f: f.message_id == answer.message_id
        )
        assert (back.sender_role, back.text) == ("agent", "On my way")

        # Heading north at 15 m/s, about 1.1 km south: the user sees it coming.
        await agent_socket.location(lat - 0.01, lon, accuracy_m=5.0, heading=0.0, speed_mps=15.0)
        eta = await next_frame(user_socket, AlertEta, lambda f: f.alert_id == raised.id)
        assert eta.method == "great_circle"
        assert 1100 < eta.distance_m < 1120
        # Its own speed (heading there), rounded up; distance_m is rounded to 0.1 m.
        assert (
            math.floor(eta.distance_m / 15.0) <= eta.eta_s <= math.ceil(eta.distance_m / 15.0) + 1
        )

        with pytest.raises(FrameRefused) as refused:
            await user_socket.message(raised.id, "   ")
        assert refused.value.code == "invalid_data"

        def in_sync() -> list[str]:
            with Client(gateway.base_url, tokens=agent.tokens) as sync_agent:
                posted = sync_agent.post_message(raised.id, "Parking now")
                assert posted.sender_role == "agent"
                return [m.text for m in sync_agent.messages(raised.id)]

        texts = await asyncio.to_thread(in_sync)
        assert texts == ["Third floor, flat 12", "On my way", "Parking now"]
        assert [m.text for m in await user.messages(raised.id)] == texts
        posted = await admin_api.post_message(raised.id, "Ambulance called")
        assert posted.sender_role == "admin"
        await next_frame(user_socket, AlertMessage, lambda f: f.message_id == posted.message_id)
    finally:
        await agent_socket.close()
        await user_socket.close()
        await user.aclose()
        await agent.aclose()
