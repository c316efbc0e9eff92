"""cluster.runtime without starting Ray: address resolution, probes when Ray is absent."""

from __future__ import annotations

import pytest
import ray

from cluster.client import EntityClient
from cluster.errors import ClusterUnavailable
from cluster.runtime import dashboard_answers, ray_ping, resolve_address, wait_for_dashboard
from config.settings import RaySettings
from tests.local import free_port


def test_empty_address_and_no_env_means_embedded() -> None:
    assert resolve_address(RaySettings(), environ={}) is None
    assert resolve_address(RaySettings(address="   "), environ={"RAY_ADDRESS": " "}) is None


def test_ray_address_env_is_honoured() -> None:
    assert resolve_address(RaySettings(), environ={"RAY_ADDRESS": "10.0.0.5:6380"}) == (
        "10.0.0.5:6380"
    )


def test_settings_address_wins_over_env() -> None:
    settings = RaySettings(address="ray://head:10001")
    assert resolve_address(settings, environ={"RAY_ADDRESS": "auto"}) == "ray://head:10001"


async def test_ray_ping_fails_when_ray_is_not_initialised() -> None:
    with pytest.raises(ClusterUnavailable, match="not initialised") as excinfo:
        await ray_ping(timeout_s=0.5)
    assert excinfo.value.retriable


def test_dashboard_probe_is_false_when_nothing_listens() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert not dashboard_answers(url, timeout_s=0.5)
    assert not wait_for_dashboard(url, timeout_s=0.3, interval_s=0.1)


def test_dashboard_probe_refuses_non_http_urls() -> None:
    assert not dashboard_answers("file:///etc/passwd")


def test_an_entity_client_without_ray_is_unavailable_and_starts_no_ray() -> None:
    # A batch whose linger ends after ray.shutdown must not start a Ray of its own.
    client = EntityClient(2, namespace="nowhere")
    with pytest.raises(ClusterUnavailable, match="not connected to Ray"):
        client.handle(0)
    assert not ray.is_initialized()
