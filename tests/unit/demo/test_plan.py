"""The demo's decisions (panic_alert.demo.plan): geometry, seeded choices, PINs."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from panic_alert.demo import plan
from panic_alert.demo.plan import BERLIN, Point, Tuning

ALEX = Point(52.5219, 13.4132)  # Alexanderplatz
BRANDENBURG_GATE = Point(52.5163, 13.3777)


def turn(a: float, b: float) -> float:
    """The smaller angle between two bearings (359.99 and 0 are 0.01 apart)."""
    return abs((a - b + 180.0) % 360.0 - 180.0)


def test_distance_between_two_berlin_landmarks_is_about_2_5_km() -> None:
    assert plan.distance_m(ALEX, BRANDENBURG_GATE) == pytest.approx(2_480, rel=0.02)
    assert plan.distance_m(ALEX, ALEX) == 0.0


def test_destination_lands_where_bearing_and_distance_say() -> None:
    for bearing in (0.0, 45.0, 90.0, 200.0, 359.0):
        there = plan.destination(ALEX, bearing, 1_234.0)
        assert plan.distance_m(ALEX, there) == pytest.approx(1_234.0, abs=0.01)
        assert turn(plan.bearing_deg(ALEX, there), bearing) < 0.01


def test_bearing_points_north_east_south_west() -> None:
    assert turn(plan.bearing_deg(ALEX, plan.destination(ALEX, 0.0, 500)), 0.0) < 0.01
    east = plan.bearing_deg(ALEX, Point(ALEX.latitude, ALEX.longitude + 0.01))
    assert east == pytest.approx(90, abs=0.1)
    south = plan.bearing_deg(ALEX, Point(ALEX.latitude - 0.01, ALEX.longitude))
    assert south == pytest.approx(180, abs=0.01)


def test_random_points_stay_in_the_disc_and_fill_it() -> None:
    rng = random.Random(7)
    distances = [
        plan.distance_m(BERLIN.centre, plan.random_point(rng, BERLIN.centre, BERLIN.radius_m))
        for _ in range(2_000)
    ]
    assert max(distances) <= BERLIN.radius_m + 0.01
    # Uniform over the area: half of the points lie beyond radius/sqrt(2).
    outer = sum(1 for d in distances if d > BERLIN.radius_m / 2**0.5)
    assert 850 < outer < 1_150


def test_move_towards_steps_by_speed_and_stops_on_the_target() -> None:
    step = plan.move_towards(ALEX, BRANDENBURG_GATE, 10.0, 30.0)
    assert not step.arrived
    assert step.speed_mps == 10.0
    assert plan.distance_m(ALEX, step.position) == pytest.approx(300.0, abs=0.01)
    assert plan.distance_m(step.position, BRANDENBURG_GATE) == pytest.approx(2_180, rel=0.02)
    assert step.heading == pytest.approx(plan.bearing_deg(ALEX, BRANDENBURG_GATE))
    last = plan.move_towards(ALEX, BRANDENBURG_GATE, 10.0, 10_000.0)
    assert last.arrived
    assert last.position == BRANDENBURG_GATE
    assert last.speed_mps == 0.0


def test_a_responder_driving_reaches_the_scene_radius() -> None:
    tuning = Tuning()
    position, steps = ALEX, 0
    while not plan.on_scene(position, BRANDENBURG_GATE, tuning):
        position = plan.move_towards(
            position, BRANDENBURG_GATE, tuning.response_speed_mps, 10.0
        ).position
        steps += 1
    # 2.48 km at 13.9 m/s is about 178 s: 18 steps of 10 s.
    assert 17 <= steps <= 19


def test_parse_city() -> None:
    assert plan.parse_city("52.52,13.405") == Point(52.52, 13.405)
    assert plan.parse_city(" -33.9 , 18.4 ") == Point(-33.9, 18.4)
    for bad in ("52.52", "a,b", "91,0", "0,181", "1,2,3"):
        with pytest.raises(ValueError, match=r"."):
            plan.parse_city(bad)


def test_a_seed_replays_each_persons_choices() -> None:
    def choices(seed: int | None, kind: str, number: int) -> list[object]:
        rng = plan.person_rng(seed, kind, number)
        return [
            plan.patrol_target(rng, BERLIN),
            plan.accepts_offer(rng, Tuning()),
            plan.alert_type(rng),
            plan.next_alert_in_s(rng, Tuning()),
            plan.cancel_after_s(rng, Tuning()),
        ]

    assert choices(42, "user", 3) == choices(42, "user", 3)
    assert choices(42, "user", 3) != choices(42, "user", 4)
    assert choices(42, "user", 3) != choices(43, "user", 3)
    assert choices(42, "user", 3) != choices(42, "responder", 3)


def test_responders_accept_about_the_configured_share() -> None:
    rng = random.Random(1)
    tuning = Tuning(accept_ratio=0.85)
    accepted = sum(plan.accepts_offer(rng, tuning) for _ in range(10_000))
    assert 8_300 < accepted < 8_700
    assert plan.decline_reason(rng) in plan.DECLINE_REASONS
    assert not any(plan.accepts_offer(rng, Tuning(accept_ratio=0.0)) for _ in range(100))


def test_alert_types_are_the_apis_weighted_as_planned() -> None:
    rng = random.Random(2)
    drawn = Counter(plan.alert_type(rng) for _ in range(10_000))
    assert set(drawn) == {"panic", "medical", "fire", "security", "other"}
    assert drawn["panic"] > drawn["medical"] > drawn["security"] > drawn["other"] > drawn["fire"]
    for kind in drawn:
        note = plan.alert_note(rng, kind)
        assert note is None or note in plan.NOTES[kind]


def test_alerts_come_every_alert_every_s_on_average() -> None:
    rng = random.Random(3)
    tuning = Tuning(alert_every_s=60.0)
    waits = [plan.next_alert_in_s(rng, tuning) for _ in range(20_000)]
    assert min(waits) >= 0
    assert sum(waits) / len(waits) == pytest.approx(60.0, rel=0.05)


def test_some_alerts_are_cancelled_within_the_window() -> None:
    rng = random.Random(4)
    tuning = Tuning(cancel_ratio=0.2, cancel_after_min_s=10, cancel_after_max_s=60)
    afters = [plan.cancel_after_s(rng, tuning) for _ in range(5_000)]
    cancelled = [a for a in afters if a is not None]
    assert 900 < len(cancelled) < 1_100
    assert all(10 <= a <= 60 for a in cancelled)
    assert plan.cancel_after_s(rng, Tuning(cancel_ratio=0.0)) is None


def test_users_give_up_only_on_an_alert_nobody_took() -> None:
    tuning = Tuning(give_up_after_s=300)
    assert plan.gives_up("dispatching", 300, tuning)
    assert plan.gives_up("escalated", 900, tuning)
    assert not plan.gives_up("dispatching", 299, tuning)
    assert not plan.gives_up("en_route", 9_000, tuning)


def test_statuses_reached_fill_in_missed_frames() -> None:
    assert plan.statuses_reached("dispatching") == ()
    assert plan.statuses_reached("assigned") == ("assigned",)
    assert plan.statuses_reached("on_scene") == ("assigned", "en_route", "on_scene")
    assert plan.statuses_reached("resolved")[-1] == "resolved"
    assert plan.statuses_reached("cancelled") == ("cancelled",)


def test_a_walker_heads_home_then_rests_and_goes_on_errands() -> None:
    rng = random.Random(5)
    tuning = Tuning()
    walker = plan.new_walker(rng, BERLIN, tuning)
    assert walker.target == walker.home
    assert plan.distance_m(walker.home, walker.position) <= tuning.errand_radius_m + 0.01
    out = plan.errand(rng, walker, tuning)
    assert plan.distance_m(walker.home, out) <= tuning.errand_radius_m + 0.01
    assert tuning.home_rest_min_s <= plan.rest_s(rng, tuning) <= tuning.home_rest_max_s


def test_pins_are_six_digits_different_and_never_trivial() -> None:
    rng = random.Random(6)
    for _ in range(500):
        cancel, duress = plan.new_pins(rng)
        assert cancel != duress
        for pin in (cancel, duress):
            assert len(pin) == 6
            assert pin.isdigit()
            assert not plan.is_trivial_pin(pin)
    for trivial in ("000000", "123456", "987654", "121212", "123123", "135791"):
        assert plan.is_trivial_pin(trivial), trivial
    assert not plan.is_trivial_pin("530917")


def test_demo_emails_and_the_progress_line() -> None:
    assert plan.demo_email("responder", 1) == "demo-responder-0001@demo.example.org"
    assert plan.demo_email("user", 250) == "demo-user-0250@demo.example.org"
    tally = plan.Tally(
        elapsed_s=12.4,
        responders=50,
        connected=49,
        on_duty=47,
        responding=3,
        users=20,
        raised=4,
        assigned=3,
        resolved=1,
        cancelled=0,
        offers=5,
        declined=1,
        errors=0,
    )
    line = plan.progress_line(tally)
    assert line.startswith("12s: responders 49/50 connected, 47 on duty, 3 responding")
    assert "alerts 4 raised, 3 assigned, 1 resolved, 0 cancelled" in line
    assert line.endswith("offers 5, 1 declined | errors 0")
