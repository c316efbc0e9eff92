"""Arrival estimates (``geo.eta``): the arithmetic and the timeline's record rule."""

from __future__ import annotations

import math

import pytest

from geo.cells import haversine_m
from geo.errors import InvalidCoordinate
from geo.eta import (
    ARRIVED_M,
    DEFAULT_SPEED_MPS,
    GREAT_CIRCLE,
    angle_between_deg,
    bearing_deg,
    estimate,
    worth_recording,
)

# An alert in Kreuzberg, Berlin; a responder about 1.1 km due south of it.
ALERT = (52.4986, 13.4030)
SOUTH = (52.4886, 13.4030)


def test_the_estimate_is_the_great_circle_at_the_mode_speed_rounded_up() -> None:
    distance = haversine_m(*SOUTH, *ALERT)
    eta = estimate(from_lat=SOUTH[0], from_lon=SOUTH[1], to_lat=ALERT[0], to_lon=ALERT[1])
    assert eta.method == GREAT_CIRCLE
    assert eta.distance_m == round(distance, 1)
    assert eta.speed_mps == DEFAULT_SPEED_MPS
    assert eta.eta_s == math.ceil(distance / DEFAULT_SPEED_MPS)
    assert eta.eta_s > distance / DEFAULT_SPEED_MPS  # rounded up, never down


def test_a_configured_mode_speed_is_used() -> None:
    eta = estimate(
        from_lat=SOUTH[0], from_lon=SOUTH[1], to_lat=ALERT[0], to_lon=ALERT[1], mode_speed_mps=2.0
    )
    assert eta.eta_s == math.ceil(haversine_m(*SOUTH, *ALERT) / 2.0)


def test_a_faster_responder_heading_for_the_alert_is_taken_at_its_own_speed() -> None:
    # Due north, the bearing from SOUTH to ALERT; 40 degrees off still counts.
    for heading in (0.0, 40.0, 320.0):
        eta = estimate(
            from_lat=SOUTH[0],
            from_lon=SOUTH[1],
            to_lat=ALERT[0],
            to_lon=ALERT[1],
            heading=heading,
            speed_mps=20.0,
        )
        assert eta.speed_mps == 20.0
        assert eta.eta_s == math.ceil(haversine_m(*SOUTH, *ALERT) / 20.0)


@pytest.mark.parametrize(
    ("heading", "speed"),
    [
        (90.0, 20.0),  # fast, but driving past (more than 45 degrees off)
        (180.0, 20.0),  # fast, driving away
        (None, 20.0),  # no heading reported
        (0.0, None),  # no speed reported
        (0.0, 3.0),  # heading there, slower than the mode speed
    ],
)
def test_otherwise_the_mode_speed_is_used(heading: float | None, speed: float | None) -> None:
    eta = estimate(
        from_lat=SOUTH[0],
        from_lon=SOUTH[1],
        to_lat=ALERT[0],
        to_lon=ALERT[1],
        heading=heading,
        speed_mps=speed,
    )
    assert eta.speed_mps == DEFAULT_SPEED_MPS


def test_within_thirty_metres_the_responder_is_there() -> None:
    near = (ALERT[0] - 0.0002, ALERT[1])  # about 22 m
    assert haversine_m(*near, *ALERT) < ARRIVED_M
    assert estimate(from_lat=near[0], from_lon=near[1], to_lat=ALERT[0], to_lon=ALERT[1]).eta_s == 0
    far = (ALERT[0] - 0.0004, ALERT[1])  # about 44 m
    assert estimate(from_lat=far[0], from_lon=far[1], to_lat=ALERT[0], to_lon=ALERT[1]).eta_s > 0


def test_bad_input_is_refused() -> None:
    with pytest.raises(InvalidCoordinate):
        estimate(from_lat=91.0, from_lon=0.0, to_lat=0.0, to_lon=0.0)
    with pytest.raises(ValueError, match="positive"):
        estimate(from_lat=0.0, from_lon=0.0, to_lat=0.0, to_lon=1.0, mode_speed_mps=0.0)


def test_bearings_and_angles() -> None:
    assert bearing_deg(*SOUTH, *ALERT) == pytest.approx(0.0, abs=1e-6)
    assert bearing_deg(*ALERT, *SOUTH) == pytest.approx(180.0, abs=1e-6)
    assert bearing_deg(0.0, 0.0, 0.0, 1.0) == pytest.approx(90.0)
    assert bearing_deg(0.0, 1.0, 0.0, 0.0) == pytest.approx(270.0)
    assert angle_between_deg(350.0, 10.0) == pytest.approx(20.0)
    assert angle_between_deg(10.0, 350.0) == pytest.approx(20.0)
    assert angle_between_deg(0.0, 180.0) == pytest.approx(180.0)


@pytest.mark.parametrize(
    ("last", "eta", "recorded"),
    [
        (None, 500, True),  # the first of an assignment
        (None, 0, True),
        (600, 545, False),  # 55 s: under a minute
        (600, 540, False),  # 60 s, but only 10 %
        (300, 240, True),  # 60 s and 20 %
        (300, 241, False),  # 59 s
        (1000, 900, False),  # 100 s but 10 %
        (1000, 800, True),  # 200 s and 20 %
        (200, 300, True),  # later, by 100 s and 50 %
        (0, 60, True),
        (0, 59, False),
    ],
)
def test_an_estimate_is_recorded_when_it_moved_a_minute_and_a_fifth(
    last: int | None, eta: int, recorded: bool
) -> None:
    assert worth_recording(last, eta) is recorded
