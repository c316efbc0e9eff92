"""The demo's decisions, pure: where responders patrol and drive, what they
answer, where users walk, when they raise an alert and when they cancel it.

Nothing here does I/O or reads a clock: every random choice is drawn from the
``random.Random`` passed in (one per simulated person, seeded from
``--seed``), so a seed replays the same choices, and times are seconds of
*simulated* time (the driver, :mod:`panic_alert.demo.run`, divides them by
``--speed``). Geometry is great-circle on a sphere: plenty for a city.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass

#: Mean Earth radius (IUGG), metres.
EARTH_RADIUS_M = 6_371_008.8

#: The alert types API.md lists, with how often the demo's users raise each.
ALERT_TYPE_WEIGHTS: tuple[tuple[str, int], ...] = (
    ("panic", 40),
    ("medical", 25),
    ("security", 20),
    ("other", 10),
    ("fire", 5),
)

#: What a demo alert's description says, by type (a demo note, never real).
NOTES: dict[str, tuple[str, ...]] = {
    "panic": ("Someone is following me", "I feel unsafe", "Help, please hurry"),
    "medical": ("Chest pain", "Someone collapsed", "Bad fall, cannot stand"),
    "security": ("Break-in next door", "A fight in the street", "Suspicious person"),
    "other": ("Lost and scared", "Need help"),
    "fire": ("Smoke from a window", "Car on fire"),
}

DECLINE_REASONS = ("already on a call", "too far away", "vehicle problem")

#: ``error`` codes of a refused socket frame that mean the world moved on (the
#: offer went to someone else, the user cancelled first): expected in a busy
#: city, never counted as errors. Any other code is one.
RACE_CODES = frozenset(
    {
        "conflict",
        "invalid_transition",
        "no_pending_offer",
        "already_assigned",
        "not_permitted",
        "not_found",
    }
)

#: Statuses of an alert nobody has taken yet.
UNTAKEN = frozenset({"dispatching", "escalated"})
#: Statuses in the order an alert moves through them once taken.
TAKEN_ORDER = ("assigned", "en_route", "on_scene", "resolved")
TERMINAL = frozenset({"resolved", "cancelled"})

#: The demo's accounts: ``demo-{kind}-{n:04d}@`` this domain (``.invalid`` and
#: the other special-use names are refused by the API's email check).
EMAIL_DOMAIN = "demo.example.org"


@dataclass(frozen=True, slots=True)
class Point:
    latitude: float
    longitude: float


@dataclass(frozen=True, slots=True)
class City:
    """The disc everyone stays in."""

    centre: Point
    radius_m: float


BERLIN = City(Point(52.52, 13.405), 5_000.0)


@dataclass(frozen=True, slots=True)
class Tuning:
    """The demo world's constants. Speeds and durations are simulated time,
    except the ``*_fix_every_s`` cadences, which are real seconds: they are
    what the server sees, and stay far below its location limits (``/ws``:
    ``http.ws_frame_rate``, 20 frames a second; REST:
    ``rate_limit.location_per_principal``, 600 a minute) at any ``--speed``."""

    #: Share of offers a responder accepts (it declines the rest).
    accept_ratio: float = 0.85
    #: Cruising on patrol, and driving to an alert through city traffic.
    patrol_speed_mps: float = 8.0
    response_speed_mps: float = 13.9
    walk_speed_mps: float = 1.4
    #: A responder this close to the alert reports ``on_scene``.
    on_scene_radius_m: float = 30.0
    #: How long a responder stays on scene before ``resolved``.
    on_scene_min_s: float = 15.0
    on_scene_max_s: float = 60.0
    #: Mean time between two alerts of one user (exponential waits).
    alert_every_s: float = 60.0
    #: Share of alerts their user cancels (with the PIN), and when.
    cancel_ratio: float = 0.2
    cancel_after_min_s: float = 10.0
    cancel_after_max_s: float = 60.0
    #: A user whose alert nobody took this long cancels it (gives up waiting).
    give_up_after_s: float = 300.0
    #: A user at home stays this long before the next errand.
    home_rest_min_s: float = 30.0
    home_rest_max_s: float = 180.0
    #: Errands are at most this far from home.
    errand_radius_m: float = 1_500.0
    #: Real seconds between two location fixes of a responder, of a user.
    responder_fix_every_s: float = 2.0
    user_fix_every_s: float = 4.0


# --- geometry ------------------------------------------------------------------------


def parse_city(text: str) -> Point:
    """``"LAT,LON"`` (decimal degrees) as a point; ValueError when it is not one."""
    parts = text.split(",")
    if len(parts) != 2:
        raise ValueError(f"expected LAT,LON, got {text!r}")
    latitude, longitude = (float(part) for part in parts)
    if not (-85.0 <= latitude <= 85.0 and -180.0 <= longitude <= 180.0):
        raise ValueError(f"{text!r} is not a latitude in [-85, 85] and a longitude in [-180, 180]")
    return Point(latitude, longitude)


def distance_m(a: Point, b: Point) -> float:
    """Great-circle distance (haversine)."""
    phi1, phi2 = math.radians(a.latitude), math.radians(b.latitude)
    dphi = phi2 - phi1
    dlam = math.radians(b.longitude - a.longitude)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlam / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def bearing_deg(a: Point, b: Point) -> float:
    """Initial bearing from ``a`` to ``b``, degrees clockwise from north in [0, 360)."""
    phi1, phi2 = math.radians(a.latitude), math.radians(b.latitude)
    dlam = math.radians(b.longitude - a.longitude)
    y = math.sin(dlam) * math.cos(phi2)
    x = math.cos(phi1) * math.sin(phi2) - math.sin(phi1) * math.cos(phi2) * math.cos(dlam)
    return math.degrees(math.atan2(y, x)) % 360.0


def destination(start: Point, bearing: float, distance: float) -> Point:
    """The point ``distance`` metres from ``start`` along ``bearing`` degrees."""
    delta = distance / EARTH_RADIUS_M
    theta = math.radians(bearing)
    phi1, lam1 = math.radians(start.latitude), math.radians(start.longitude)
    phi2 = math.asin(
        math.sin(phi1) * math.cos(delta) + math.cos(phi1) * math.sin(delta) * math.cos(theta)
    )
    lam2 = lam1 + math.atan2(
        math.sin(theta) * math.sin(delta) * math.cos(phi1),
        math.cos(delta) - math.sin(phi1) * math.sin(phi2),
    )
    longitude = (math.degrees(lam2) + 540.0) % 360.0 - 180.0
    return Point(math.degrees(phi2), longitude)


def random_point(rng: random.Random, centre: Point, radius_m: float) -> Point:
    """A point uniformly distributed over the disc (not crowded at its centre)."""
    return destination(centre, rng.uniform(0.0, 360.0), radius_m * math.sqrt(rng.random()))


@dataclass(frozen=True, slots=True)
class Move:
    """Where a mover is after one step, facing where, how fast, and whether it arrived."""

    position: Point
    heading: float
    speed_mps: float
    arrived: bool


def move_towards(position: Point, target: Point, speed_mps: float, dt_s: float) -> Move:
    """One step of ``dt_s`` seconds at ``speed_mps`` straight to ``target``; a
    step that would pass the target stops on it (``arrived``, speed 0)."""
    left = distance_m(position, target)
    heading = bearing_deg(position, target) if left > 0 else 0.0
    step = speed_mps * dt_s
    if step >= left:
        return Move(target, heading, 0.0, True)
    return Move(destination(position, heading, step), heading, speed_mps, False)


# --- responders ----------------------------------------------------------------------


def patrol_target(rng: random.Random, city: City) -> Point:
    """The next place a patrolling responder drives to."""
    return random_point(rng, city.centre, city.radius_m)


def accepts_offer(rng: random.Random, tuning: Tuning) -> bool:
    """Whether a responder accepts an offer (``accept_ratio`` of them)."""
    return rng.random() < tuning.accept_ratio


def decline_reason(rng: random.Random) -> str:
    return rng.choice(DECLINE_REASONS)


def on_scene_for_s(rng: random.Random, tuning: Tuning) -> float:
    """How long a responder stays on scene before reporting ``resolved``."""
    return rng.uniform(tuning.on_scene_min_s, tuning.on_scene_max_s)


def on_scene(position: Point, alert: Point, tuning: Tuning) -> bool:
    return distance_m(position, alert) <= tuning.on_scene_radius_m


# --- users ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Walker:
    """A user's day: a home, where they are, where they are going (home or an errand)."""

    home: Point
    position: Point
    target: Point


def new_walker(rng: random.Random, city: City, tuning: Tuning) -> Walker:
    """A user somewhere in the city, on the way home from an errand."""
    home = random_point(rng, city.centre, city.radius_m)
    out = random_point(rng, home, tuning.errand_radius_m)
    return Walker(home, out, home)


def errand(rng: random.Random, walker: Walker, tuning: Tuning) -> Point:
    """Where a user rested at home goes next."""
    return random_point(rng, walker.home, tuning.errand_radius_m)


def rest_s(rng: random.Random, tuning: Tuning) -> float:
    return rng.uniform(tuning.home_rest_min_s, tuning.home_rest_max_s)


def next_alert_in_s(rng: random.Random, tuning: Tuning) -> float:
    """Seconds until a user's next alert: exponential, mean ``alert_every_s``
    (alerts come as a Poisson process per user)."""
    return rng.expovariate(1.0 / tuning.alert_every_s)


def alert_type(rng: random.Random) -> str:
    names = [name for name, _ in ALERT_TYPE_WEIGHTS]
    weights = [weight for _, weight in ALERT_TYPE_WEIGHTS]
    return rng.choices(names, weights)[0]


def alert_note(rng: random.Random, kind: str) -> str | None:
    """The description a user types, or none (a panic press often has none)."""
    if rng.random() < 0.3:
        return None
    return rng.choice(NOTES.get(kind, NOTES["other"]))


def cancel_after_s(rng: random.Random, tuning: Tuning) -> float | None:
    """When the user cancels this alert (seconds after raising it), or None: they don't."""
    if rng.random() >= tuning.cancel_ratio:
        return None
    return rng.uniform(tuning.cancel_after_min_s, tuning.cancel_after_max_s)


def gives_up(status: str, open_for_s: float, tuning: Tuning) -> bool:
    """Whether a user cancels an alert no responder has taken after ``open_for_s``
    seconds (one in a busy city, or where every responder declined)."""
    return status in UNTAKEN and open_for_s >= tuning.give_up_after_s


def statuses_reached(status: str) -> tuple[str, ...]:
    """The statuses an alert seen in ``status`` has passed through for the
    tally (seeing ``en_route`` means it was ``assigned`` too; a frame may be
    missed, pushes being at-most-once)."""
    if status in TAKEN_ORDER:
        return TAKEN_ORDER[: TAKEN_ORDER.index(status) + 1]
    if status == "cancelled":
        return ("cancelled",)
    return ()


def is_trivial_pin(pin: str) -> bool:
    """A repeat, a run up or down, or a repeated block: what the API refuses
    (``gateway.auth.pins`` keeps the authoritative rule; this one is as strict)."""
    digits = [int(c) for c in pin]
    steps = {(b - a) % 10 for a, b in itertools.pairwise(digits)}
    if len(steps) <= 1:
        return True
    return any(
        len(pin) % period == 0 and pin == pin[:period] * (len(pin) // period)
        for period in range(1, len(pin) // 2 + 1)
    )


def new_pins(rng: random.Random) -> tuple[str, str]:
    """A cancel PIN and a different duress PIN, six digits each, neither trivial."""
    pins: list[str] = []
    while len(pins) < 2:
        pin = "".join(str(rng.randrange(10)) for _ in range(6))
        if not is_trivial_pin(pin) and pin not in pins:
            pins.append(pin)
    return pins[0], pins[1]


# --- accounts and the progress line --------------------------------------------------


def demo_email(kind: str, number: int) -> str:
    """``demo-responder-0001@demo.example.org``; ``number`` counts from 1."""
    return f"demo-{kind}-{number:04d}@{EMAIL_DOMAIN}"


def person_rng(seed: int | None, kind: str, number: int) -> random.Random:
    """One person's random source: seeded runs replay each person's choices,
    whatever order the others' coroutines run in."""
    if seed is None:
        return random.Random()
    return random.Random(f"{seed}:{kind}:{number}")


@dataclass(frozen=True, slots=True)
class Tally:
    """What the progress line shows (counted by the driver)."""

    elapsed_s: float
    responders: int
    connected: int
    on_duty: int
    responding: int
    users: int
    raised: int
    assigned: int
    resolved: int
    cancelled: int
    offers: int
    declined: int
    errors: int


def progress_line(tally: Tally) -> str:
    """One line for stderr (after ``demo: ``), e.g. ``12s: responders 49/50
    connected, 47 on duty, 3 responding | users 20 | alerts 4 raised, 3
    assigned, 1 resolved, 0 cancelled | offers 5, 1 declined | errors 0``."""
    t = tally
    return (
        f"{t.elapsed_s:.0f}s: responders {t.connected}/{t.responders} connected, "
        f"{t.on_duty} on duty, {t.responding} responding | users {t.users} | "
        f"alerts {t.raised} raised, {t.assigned} assigned, {t.resolved} resolved, "
        f"{t.cancelled} cancelled | offers {t.offers}, {t.declined} declined | "
        f"errors {t.errors}"
    )
