"""Push tokens as POST /users/devices accepts them (gateway.devices): a web
token is a PushSubscription with an https endpoint on a public host (http on
loopback only when allowed) and base64url keys of the right lengths, stored
canonical; native tokens are opaque but printable."""

from __future__ import annotations

import base64
import json

import pytest

from gateway.devices import MAX_TOKEN_CHARS, check_endpoint, push_token
from tests.fakes.webpush import FakeBrowser

BROWSER = FakeBrowser()
GOOD = BROWSER.subscription("https://fcm.googleapis.com/fcm/send/abc:def")
#: 65 bytes starting 0x04, but no point of P-256.
OFF_CURVE = base64.urlsafe_b64encode(b"\x04" + b"\x01" * 64).rstrip(b"=").decode()


def web(token: object, *, loopback: bool = False) -> str:
    text = token if isinstance(token, str) else json.dumps(token)
    return push_token("web", text, allow_loopback_http=loopback)


def test_a_subscription_is_stored_canonical_so_the_same_one_is_one_token() -> None:
    reordered = {
        "keys": {"auth": GOOD["keys"]["auth"] + "==", "p256dh": GOOD["keys"]["p256dh"]},
        "expirationTime": None,
        "endpoint": GOOD["endpoint"],
    }
    stored = web(GOOD)
    assert web(json.dumps(reordered, indent=2)) == stored
    assert json.loads(stored) == GOOD


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://fcm.googleapis.com/x",
        "ftp://push.example/x",
        "https://",
        "https://user:pw@push.example/x",
        "https://push.example/x#frag",
        "https://localhost/x",
        "https://127.0.0.1/x",
        "https://10.1.2.3/x",
        "https://[::1]/x",
        "https://169.254.169.254/latest",
        "http://127.0.0.1:8080/x",
        "https://push.example:99999/x",
        "https://push.example/" + "a" * 1100,
        "https://push.example/x\n",
        "https://push.example/a b",
        "https://push.ex\tample/x",
        "",
        17,
        None,
    ],
)
def test_endpoints_that_are_refused(endpoint: object) -> None:
    with pytest.raises(ValueError, match="endpoint"):
        web({**GOOD, "endpoint": endpoint})


def test_loopback_http_only_when_the_settings_allow_it() -> None:
    for endpoint in ("http://127.0.0.1:8080/push/1", "http://localhost:9/x", "http://[::1]:5/x"):
        assert check_endpoint(endpoint, allow_loopback_http=True) == endpoint
    with pytest.raises(ValueError, match="endpoint"):
        check_endpoint("http://push.example/x", allow_loopback_http=True)
    assert check_endpoint("https://8.8.8.8/x", allow_loopback_http=False) == "https://8.8.8.8/x"


@pytest.mark.parametrize(
    ("keys", "reason"),
    [
        ({"auth": GOOD["keys"]["auth"]}, "p256dh"),
        ({"p256dh": GOOD["keys"]["p256dh"]}, "auth"),
        ({**GOOD["keys"], "auth": "AAAA"}, "auth must be 16 bytes"),
        ({**GOOD["keys"], "p256dh": GOOD["keys"]["p256dh"][:-4]}, "p256dh must be 65 bytes"),
        ({**GOOD["keys"], "p256dh": OFF_CURVE}, "P-256 point"),
        ({**GOOD["keys"], "auth": "not base64!"}, "base64url"),
        ({**GOOD["keys"], "auth": 16}, "base64url"),
    ],
)
def test_keys_of_the_wrong_shape_are_refused(keys: dict[str, object], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        web({**GOOD, "keys": keys})


@pytest.mark.parametrize(
    "token", ["not json", "[1, 2]", '"https://x"', '{"endpoint": "https://x"}']
)
def test_a_web_token_must_be_a_subscription_object(token: str) -> None:
    with pytest.raises(ValueError, match=r"push_token|keys"):
        web(token)


def test_native_tokens_are_opaque_printable_strings() -> None:
    fcm = "dQw4w9WgXcQ:APA91bH-" + "x" * 140
    assert push_token("android", fcm, allow_loopback_http=False) == fcm
    assert push_token("ios", "a1" * 32, allow_loopback_http=False) == "a1" * 32
    for bad in ("short", "has space 12345", "tab\tbetween1", "ünïcode-token"):
        with pytest.raises(ValueError, match="push_token"):
            push_token("ios", bad, allow_loopback_http=False)
    with pytest.raises(ValueError, match="at most"):
        push_token("android", "x" * (MAX_TOKEN_CHARS + 1), allow_loopback_http=False)
