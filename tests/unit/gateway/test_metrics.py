"""/metrics: Prometheus exposition labelled by route template, method and status."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry, values
from prometheus_client.multiprocess import mark_process_dead
from prometheus_client.parser import text_string_to_metric_families

from gateway.metrics import HttpMetrics, ResponseTimes
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


# ---------------------------------------------- several gateway processes (multiprocess)


@pytest.fixture
def processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """prometheus_client in multiprocess mode on ``tmp_path``, as in a gateway started
    with PROMETHEUS_MULTIPROC_DIR; the list holds the process id it writes as, so one
    test can play several gateway processes in turn."""
    pid = [1001]
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue(lambda: pid[0]))
    try:
        yield pid
    finally:
        values.close_all_multiprocess_files()


def test_multiprocess_mode_sums_every_gateway_process(processes: list[int], tmp_path: Path) -> None:
    first = HttpMetrics(multiprocess_dir=str(tmp_path))
    first.started("GET")
    first.finished("GET", "/alerts", 200, 0.01)
    first.started("GET")  # still in flight in process 1001
    first.locations.source = SimpleNamespace(
        accepted=5,
        refused=1,
        carried_out=4,
        waiting=1,
        batches={"streamed": 6, "called": 2, "failed": 1},
    )
    first.sync()
    first.sync()  # nothing new: nothing added
    processes[0] = 1002
    second = HttpMetrics(multiprocess_dir=str(tmp_path))
    second.started("GET")
    second.finished("GET", "/alerts", 200, 0.02)
    second.locations.source = SimpleNamespace(
        accepted=3,
        refused=0,
        carried_out=3,
        waiting=0,
        batches={"streamed": 0, "called": 4, "failed": 0},
    )
    second.sync()

    text = second.exposition().decode()
    labels = (("method", "GET"), ("route", "/alerts"), ("status", "200"))
    assert _samples(text, "http_requests_total") == {labels: 2}
    assert _samples(text, "http_request_duration_seconds_count") == {labels: 2}
    assert _samples(text, "http_requests_in_progress") == {(("method", "GET"),): 1}
    fixes = _samples(text, "geofence_fixes_total")
    assert fixes == {
        (("outcome", "accepted"),): 8,
        (("outcome", "refused"),): 1,
        (("outcome", "carried_out"),): 7,
    }
    assert _samples(text, "geofence_fixes_waiting") == {(): 1}
    assert _samples(text, "geofence_fix_batches_total") == {
        (("outcome", "streamed"),): 6,
        (("outcome", "called"),): 6,
        (("outcome", "failed"),): 1,
    }
    # Per-process collectors are left out: they cannot be summed.
    assert "process_cpu_seconds" not in text
    assert "python_gc_" not in text

    # A process that exited: its in-flight gauges no longer count, its counts do.
    mark_process_dead(1001, str(tmp_path))
    text = second.exposition().decode()
    assert _samples(text, "http_requests_in_progress") == {(("method", "GET"),): 0}
    assert _samples(text, "geofence_fixes_waiting") == {(): 0}
    assert _samples(text, "http_requests_total") == {labels: 2}


def test_one_process_exposes_its_fix_counts_and_batches_by_outcome() -> None:
    metrics = HttpMetrics()
    metrics.locations.source = SimpleNamespace(
        accepted=7,
        refused=2,
        carried_out=5,
        waiting=0,
        batches={"streamed": 3, "called": 1, "failed": 1},
    )
    text = metrics.exposition().decode()
    assert _samples(text, "geofence_fixes_total") == {
        (("outcome", "accepted"),): 7,
        (("outcome", "refused"),): 2,
        (("outcome", "carried_out"),): 5,
    }
    assert _samples(text, "geofence_fix_batches_total") == {
        (("outcome", "streamed"),): 3,
        (("outcome", "called"),): 1,
        (("outcome", "failed"),): 1,
    }


def test_multiprocess_mode_needs_prometheus_client_in_it(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="multiprocess mode"):
        HttpMetrics(multiprocess_dir=str(tmp_path))


class FakeResponseReads:
    """A fake ``MetricsReads``: each read waits for ``answer`` to be set, then gives
    one row whose counts are the read's number."""

    def __init__(self) -> None:
        self.answer = asyncio.Event()
        self.reads = 0

    async def response_times(
        self, stages: Sequence[str], buckets: Sequence[int]
    ) -> tuple[float, ...] | None:
        self.reads += 1
        number = float(self.reads)
        await self.answer.wait()
        return (number,) * (len(stages) * (2 + len(buckets)))


def _response_counts(registry: CollectorRegistry) -> set[float]:
    return {
        s.value
        for family in registry.collect()
        if family.name == "alert_response_seconds"
        for s in family.samples
        if s.name == "alert_response_seconds_count"
    }


async def test_only_the_first_response_times_read_is_waited_for() -> None:
    """A later read runs beside the scrape, which answers with the figures it has:
    a slow PostgreSQL never holds ``/metrics`` once it has answered once."""
    registry = CollectorRegistry()
    times = ResponseTimes(registry, max_age_s=0.0)
    reads = FakeResponseReads()
    first = asyncio.create_task(times.refresh(reads))
    await asyncio.sleep(0.05)
    assert not first.done()  # nothing to show yet: the first read is waited for
    reads.answer.set()
    await first
    assert _response_counts(registry) == {1.0}

    reads.answer.clear()  # PostgreSQL slow from now on
    await asyncio.wait_for(times.refresh(reads), 1.0)  # answered at once
    await asyncio.wait_for(times.refresh(reads), 1.0)  # one read in flight, not two
    assert reads.reads == 2
    assert _response_counts(registry) == {1.0}  # the figures it had
    reads.answer.set()
    await asyncio.sleep(0.05)
    assert _response_counts(registry) == {2.0}
