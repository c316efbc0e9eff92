"""/metrics: Prometheus exposition labelled by route template, method and status."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.unit.gateway.support import ClientFactory


def _samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    out: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                out[tuple(sorted(sample.labels.items()))] = sample.value
    return out


async def test_requests_are_counted_by_route_template(gateway_client: ClientFactory) -> None:
    async with gateway_client() as client:
        for item in (1, 2, 3):
            assert (await client.get(f"/items/{item}")).status_code == 200
        assert (await client.get("/items/not-a-number")).status_code == 422
        assert (await client.get("/nowhere/123")).status_code == 404
        assert (await client.post("/items/1")).status_code == 405
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    counts = _samples(text, "http_requests_total")
    template = "/items/{item_id}"
    assert counts[(("method", "GET"), ("route", template), ("status", "200"))] == 3
    assert counts[(("method", "GET"), ("route", template), ("status", "422"))] == 1
    assert counts[(("method", "GET"), ("route", "<unmatched>"), ("status", "404"))] == 1
    # A known path with the wrong method still counts under its template.
    assert counts[(("method", "POST"), ("route", template), ("status", "405"))] == 1
    # Raw paths never become label values.
    assert "/items/1" not in text
    assert "/nowhere" not in text


async def test_latency_histogram_has_buckets_per_route(gateway_client: ClientFactory) -> None:
    async with gateway_client() as client:
        await client.get("/items/5")
        await client.get("/boom")
        text = (await client.get("/metrics")).text
    counts = _samples(text, "http_request_duration_seconds_count")
    assert counts[(("method", "GET"), ("route", "/items/{item_id}"), ("status", "200"))] == 1
    assert counts[(("method", "GET"), ("route", "/boom"), ("status", "500"))] == 1
    buckets = _samples(text, "http_request_duration_seconds_bucket")
    inf = (("le", "+Inf"), ("method", "GET"), ("route", "/boom"), ("status", "500"))
    assert buckets[inf] == 1


async def test_each_app_has_its_own_registry(gateway_client: ClientFactory) -> None:
    async with gateway_client() as first:
        await first.get("/items/1")
    async with gateway_client() as second:
        text = (await second.get("/metrics")).text
    counts = _samples(text, "http_requests_total")
    assert (("method", "GET"), ("route", "/items/{item_id}"), ("status", "200")) not in counts


async def test_in_progress_gauge_returns_to_zero(gateway_client: ClientFactory) -> None:
    async with gateway_client() as client:
        await client.get("/items/1")
        await client.get("/boom")
        text = (await client.get("/metrics")).text
    gauge = _samples(text, "http_requests_in_progress")
    # Only the /metrics request itself is in flight while the exposition is generated.
    assert gauge[(("method", "GET"),)] == 1
