"""gateway.locations: a validated fix becomes a Sighting; what Redis keeps of it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from uuid import uuid4

import pytest

from actors.subject import SubjectRole, subject_key
from config.settings import GeofenceSettings
from gateway.locations import StaleFix, sighting
from gateway.routes.geofencing import LocationIn
from gateway.ws.frames import LocationData

NOW = datetime(2026, 11, 26, 12, 0, 0, 123456, tzinfo=UTC)
SETTINGS = GeofenceSettings()
USER_KEY = subject_key(SubjectRole.USER, uuid4())


def test_a_frame_with_every_field_is_kept_with_its_times_in_utc() -> None:
    east = timezone(timedelta(hours=2))
    data = LocationData(
        latitude=-33.9,
        longitude=18,
        accuracy_m=8,
        heading=90.5,
        speed_mps=1.25,
        recorded_at=datetime(2026, 11, 26, 13, 59, 30, tzinfo=east),
    )
    subject = uuid4()
    seen = sighting(SETTINGS, "agent", data, NOW, subject_key(SubjectRole.AGENT, subject))
    assert (seen.role, seen.subject_id, seen.received_at) == (SubjectRole.AGENT, subject, NOW)
    assert (seen.fix.latitude, seen.fix.longitude, seen.fix.accuracy_m) == (-33.9, 18.0, 8.0)
    assert seen.fix.recorded_at == datetime(2026, 11, 26, 11, 59, 30, tzinfo=UTC)
    assert seen.fix.recorded_at.utcoffset() == timedelta(0)
    assert json.loads(seen.stored()) == {
        "latitude": -33.9,
        "longitude": 18.0,
        "accuracy_m": 8.0,
        "heading": 90.5,
        "speed_mps": 1.25,
        "recorded_at": "2026-11-26T11:59:30+00:00",
        "received_at": "2026-11-26T12:00:00.123456+00:00",
    }


def test_a_bare_body_is_exact_taken_now_and_stored_without_nulls() -> None:
    seen = sighting(SETTINGS, SubjectRole.USER, LocationIn(latitude=1, longitude=2), NOW, USER_KEY)
    assert (seen.fix.accuracy_m, seen.fix.recorded_at) == (0.0, NOW)
    assert json.loads(seen.stored()) == {
        "latitude": 1.0,
        "longitude": 2.0,
        "recorded_at": NOW.isoformat(),
        "received_at": NOW.isoformat(),
    }


@pytest.mark.parametrize(
    "offset_s",
    [SETTINGS.max_future_s + 1, -SETTINGS.max_age_s - 1],
    ids=["too far ahead", "too old"],
)
def test_a_fix_too_far_from_now_is_stale(offset_s: float) -> None:
    data = LocationData(latitude=1, longitude=2, recorded_at=NOW + timedelta(seconds=offset_s))
    with pytest.raises(StaleFix):
        sighting(SETTINGS, "user", data, NOW, USER_KEY)


def test_a_fix_just_within_the_limits_is_taken() -> None:
    for offset_s in (SETTINGS.max_future_s, -SETTINGS.max_age_s):
        at = NOW + timedelta(seconds=offset_s)
        data = LocationData(latitude=1, longitude=2, recorded_at=at)
        assert sighting(SETTINGS, "user", data, NOW, USER_KEY).fix.recorded_at == at
