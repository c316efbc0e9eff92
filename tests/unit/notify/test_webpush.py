"""The web push worker (notify.webpush) over in-memory ports, and its VAPID
sender over an in-memory HTTP transport: the pushed body decrypts (as a
browser would) to the payload, the Authorization header verifies against the
public key, a 404/410 forgets the device, a 5xx is retried, a 4xx is not."""

from __future__ import annotations

import json
from uuid import UUID

import httpx
import pytest
from py_vapid import Vapid02
from pydantic import ValidationError

from config.settings import NotifySettings
from notify import vapid
from notify.ports import WebDevice
from notify.providers import DeliveryFailed
from notify.webpush import Outcome, SubscriptionGone, VapidWebPush, WebPushWorker
from notify.webpush_plan import AlertFlags, Urgency
from tests.fakes.notify import Event
from tests.fakes.webpush import FakeBrowser, FakeDevices, FakeFlags, FakePresence, FakeSender

ALERT = UUID(int=0xA1)
USER = UUID(int=0x01)
AGENT = UUID(int=0x02)
PHONE = WebDevice(UUID(int=0xD1), json.dumps({"endpoint": "https://push.example/phone"}))
LAPTOP = WebDevice(UUID(int=0xD2), json.dumps({"endpoint": "https://push.example/laptop"}))


def offer_event() -> Event:
    data = {"alert_id": str(ALERT), "agent_id": str(AGENT), "distance_m": 800.0}
    return Event("e-offer", "alert.offered", data)


def resolved_event() -> Event:
    data = {"alert_id": str(ALERT), "user_id": str(USER), "status": "resolved", "actor_id": None}
    return Event("e-resolved", "alert.status_changed", data)


async def no_sleep(_s: float) -> None:
    return None


NORMAL = AlertFlags("medical", silent=False, duress=False)


def worker(
    flags: AlertFlags = NORMAL,
    *,
    online: set[UUID] | None = None,
    sender: FakeSender | None = None,
    devices: FakeDevices | None = None,
) -> tuple[WebPushWorker, FakeSender, FakeDevices]:
    sender = sender or FakeSender()
    devices = devices or FakeDevices({AGENT: [PHONE, LAPTOP], USER: [PHONE]})
    built = WebPushWorker(
        flags=FakeFlags({ALERT: flags}),
        presence=FakePresence(online or set()),
        devices=devices,
        sender=sender,
        max_attempts=3,
        sleep=no_sleep,
    )
    return built, sender, devices


async def test_an_offer_goes_to_every_web_device_of_an_agent_whose_app_is_closed() -> None:
    pushes, sender, _ = worker()
    outcomes = await pushes.handle([offer_event()])
    assert sorted(o.outcome for o in outcomes) == [Outcome.DELIVERED] * 2
    assert sorted(e for e, _, _ in sender.sent) == [
        "https://push.example/laptop",
        "https://push.example/phone",
    ]
    assert {p["type"] for _, p, _ in sender.sent} == {"alert.offer"}
    assert {u for _, _, u in sender.sent} == {Urgency.HIGH}


async def test_an_open_app_gets_no_web_push() -> None:
    pushes, sender, _ = worker(online={AGENT, USER})
    assert await pushes.handle([offer_event(), resolved_event()]) == []
    assert sender.sent == []


async def test_a_silent_alerts_user_gets_nothing_but_its_agents_are_offered() -> None:
    pushes, sender, _ = worker(AlertFlags("panic", silent=True, duress=False))
    await pushes.handle([resolved_event(), offer_event()])
    assert {p["type"] for _, p, _ in sender.sent} == {"alert.offer"}


async def test_gone_subscriptions_are_forgotten_at_once() -> None:
    sender = FakeSender(failures={"https://push.example/phone": [SubscriptionGone(410)]})
    pushes, sender, devices = worker(sender=sender)
    outcomes = {o.device_id: o for o in await pushes.handle([offer_event()])}
    assert outcomes[PHONE.id].outcome is Outcome.GONE
    assert outcomes[PHONE.id].attempts == 1
    assert outcomes[LAPTOP.id].outcome is Outcome.DELIVERED
    assert devices.forgotten == [PHONE.id]


async def test_a_retriable_failure_is_retried_and_a_final_one_dead_letters() -> None:
    sender = FakeSender(
        failures={
            "https://push.example/phone": [DeliveryFailed("HTTP 503")],
            "https://push.example/laptop": [DeliveryFailed("HTTP 400", retriable=False)],
        }
    )
    pushes, sender, devices = worker(sender=sender)
    outcomes = {o.device_id: o for o in await pushes.handle([offer_event()])}
    assert (outcomes[PHONE.id].outcome, outcomes[PHONE.id].attempts) == (Outcome.DELIVERED, 2)
    assert (outcomes[LAPTOP.id].outcome, outcomes[LAPTOP.id].attempts) == (
        Outcome.DEAD_LETTERED,
        1,
    )
    assert outcomes[LAPTOP.id].error == "HTTP 400"
    assert devices.forgotten == []


async def test_an_unknown_alert_or_a_bad_event_pushes_nothing() -> None:
    pushes, sender, _ = worker()
    other = {"alert_id": str(UUID(int=0xBAD)), "agent_id": str(AGENT)}
    assert await pushes.handle([Event("x", "alert.offered", other), Event("y", "nope", {})]) == []
    assert sender.tries == 0


# --- the VAPID sender over an in-memory transport -------------------------------


def sender_with(answer: int) -> tuple[VapidWebPush, list[httpx.Request], str]:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(answer)

    key = vapid.generate_private_key()
    client = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    built = VapidWebPush(
        client, private_key=key, subject="mailto:ops@example.org", ttl_s=60, clock=lambda: 1e9
    )
    return built, seen, key


async def test_the_sender_encrypts_for_the_subscription_and_signs_with_vapid() -> None:
    browser = FakeBrowser()
    push, seen, key = sender_with(201)
    payload = {"type": "alert.offer", "alert_id": str(ALERT), "title": "t", "body": "b"}
    await push.send(
        browser.subscription("https://push.example/sub/1"),
        json.dumps(payload).encode(),
        Urgency.HIGH,
    )
    (request,) = seen
    assert str(request.url) == "https://push.example/sub/1"
    assert request.headers["content-encoding"] == "aes128gcm"
    assert request.headers["ttl"] == "60"
    assert request.headers["urgency"] == "high"
    assert browser.decrypt(request.content) == payload
    scheme, _, params = request.headers["authorization"].partition(" ")
    fields = dict(p.split("=", 1) for p in params.split(","))
    assert scheme == "vapid"
    assert fields["k"] == vapid.public_key(key)
    assert Vapid02.verify(request.headers["authorization"])


@pytest.mark.parametrize("status", [404, 410])
async def test_the_sender_reports_a_gone_subscription(status: int) -> None:
    push, _, _ = sender_with(status)
    with pytest.raises(SubscriptionGone):
        await push.send(FakeBrowser().subscription("https://p.example/x"), b"{}", Urgency.HIGH)


@pytest.mark.parametrize(("status", "retriable"), [(500, True), (429, True), (400, False)])
async def test_the_sender_says_whether_a_failure_may_pass(status: int, retriable: bool) -> None:
    push, _, _ = sender_with(status)
    with pytest.raises(DeliveryFailed) as failed:
        await push.send(FakeBrowser().subscription("https://p.example/x"), b"{}", Urgency.HIGH)
    assert failed.value.retriable is retriable


def test_a_bad_vapid_key_is_refused_when_the_sender_is_built() -> None:
    with pytest.raises(vapid.InvalidVapidKey):
        VapidWebPush(httpx.AsyncClient(), private_key="c2hvcnQ", subject="mailto:a@b.c", ttl_s=1)


def test_a_generated_key_has_a_65_byte_public_key_and_stays_the_same() -> None:
    key = vapid.generate_private_key()
    public = vapid.b64url_decode(vapid.public_key(key))
    assert len(public) == 65
    assert public[0] == 4
    assert vapid.public_key(key) == vapid.public_key(key + "")
    assert vapid.audience("https://fcm.googleapis.com/fcm/send/abc") == "https://fcm.googleapis.com"


def status_event(name: str) -> Event:
    data = {"alert_id": str(ALERT), "user_id": str(USER), "status": name, "actor_id": None}
    return Event(f"e-{name}", "alert.status_changed", data)


async def test_a_device_gets_its_pushes_in_event_order_even_after_a_retry() -> None:
    sender = FakeSender(failures={"https://push.example/phone": [DeliveryFailed("HTTP 502")]})
    pushes, sender, _ = worker(sender=sender)
    names = ["assigned", "en_route", "on_scene", "resolved"]
    await pushes.handle([status_event(n) for n in names])
    titles = [p["title"] for _, p, _ in sender.sent]
    assert titles == [
        "A responder is coming",
        "Your responder is on the way",
        "Your responder has arrived",
        "Your alert is resolved",
    ]


async def test_a_device_found_gone_gets_nothing_more_in_the_batch() -> None:
    sender = FakeSender(failures={"https://push.example/phone": [SubscriptionGone(410)]})
    pushes, sender, devices = worker(sender=sender)
    outcomes = await pushes.handle([status_event("assigned"), status_event("resolved")])
    assert [o.outcome for o in outcomes] == [Outcome.GONE]
    assert sender.tries == 1
    assert devices.forgotten == [PHONE.id]


def test_the_settings_refuse_a_bad_vapid_key_or_subject_without_repeating_the_key() -> None:
    key = vapid.generate_private_key()
    assert NotifySettings(vapid_private_key=key).vapid_private_key.get_secret_value() == key
    with pytest.raises(ValidationError) as refused:
        NotifySettings(vapid_private_key="SECRET-but-short")
    assert "32 raw bytes" in str(refused.value)
    assert "SECRET" not in str(refused.value)
    with pytest.raises(ValidationError):
        NotifySettings(vapid_subject="ops@example.org")  # neither mailto: nor https:
