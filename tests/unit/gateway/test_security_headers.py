"""The pure parts of the security-header and access middleware (issue 16)."""

from __future__ import annotations

from ipaddress import ip_network

from config.settings import SecuritySettings
from gateway.middleware import client_allowed, content_security_policy, security_headers


def test_csp_names_this_origins_websocket_and_only_a_plain_host() -> None:
    assert "connect-src 'self' wss://api.example.org" in content_security_policy(
        "/alerts", "https", "api.example.org"
    )
    assert "ws://127.0.0.1:8000" in content_security_policy("/", "http", "127.0.0.1:8000")
    injected = content_security_policy("/", "http", "evil; script-src *")
    assert "evil" not in injected
    assert "script-src *" not in injected


def test_csp_extra_sources_reach_connect_and_img_src() -> None:
    csp = content_security_policy("/", "https", None, ["https://tiles.example.org", "bad;x"])
    parts = dict(part.split(" ", 1) for part in csp.split("; "))
    assert "https://tiles.example.org" in parts["connect-src"]
    assert "https://tiles.example.org" in parts["img-src"]
    assert "bad" not in csp


def test_hsts_only_over_tls_and_no_store_only_under_auth() -> None:
    settings = SecuritySettings()
    plain = security_headers("/auth/login/user", "http", "h", settings)
    assert "Strict-Transport-Security" not in plain
    assert plain["Cache-Control"] == "no-store"
    tls = security_headers("/alerts", "https", "h", settings)
    assert tls["Strict-Transport-Security"] == f"max-age={settings.hsts_max_age_s}"
    assert "Cache-Control" not in tls
    off = SecuritySettings(hsts_max_age_s=0)
    assert "Strict-Transport-Security" not in security_headers("/", "https", "h", off)


def test_client_allowed_by_network() -> None:
    nets = [ip_network("10.0.0.0/8"), ip_network("fd00::/8")]
    assert client_allowed("10.1.2.3", nets)
    assert client_allowed("::ffff:10.1.2.3", nets)
    assert client_allowed("fd00::1", nets)
    assert not client_allowed("127.0.0.1", nets)
    assert not client_allowed("not-an-ip", nets)
    assert not client_allowed(None, nets)
