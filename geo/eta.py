"""Estimated time of arrival of a responder at an alert: pure arithmetic, no I/O.

:func:`estimate` is the one estimate the platform makes (``method``
``great_circle``): the great-circle distance from the responder to the alert,
divided by a speed. The speed is the configured mode speed (``eta_speed_mps``,
``actors.eta_speed_mps`` in the settings; 8.3 m/s is about 30 km/h, urban
driving), unless the responder's own fix reports moving faster *towards* the
alert (its heading within :data:`TOWARDS_DEG` of the bearing to it): then its
own speed. Within :data:`ARRIVED_M` the estimate is 0 (a fix's own error is
about that large). Seconds are rounded up, never down: an estimate is never
earlier than the arithmetic says.

:func:`worth_recording` decides which estimates go in the alert's timeline,
so a moving responder does not flood it: the first one of an assignment, then
only one that moved by at least :data:`RECORD_MIN_CHANGE_S` *and*
:data:`RECORD_MIN_CHANGE_RATIO` from the last one recorded.

Road routing (OSRM) is not done: the great circle is a lower bound of the
road distance, so the estimate is optimistic in a grid of streets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from geo.cells import haversine_m

#: The one method implemented.
GREAT_CIRCLE: Final = "great_circle"
#: The default mode speed (m/s): about 30 km/h, urban driving.
DEFAULT_SPEED_MPS: Final = 8.3
#: Closer than this (metres), the responder is there: the estimate is 0.
ARRIVED_M: Final = 30.0
#: A heading within this many degrees of the bearing to the alert points at it.
TOWARDS_DEG: Final = 45.0
#: An estimate is recorded again only once it moved by both of these.
RECORD_MIN_CHANGE_S: Final = 60
RECORD_MIN_CHANGE_RATIO: Final = 0.2


@dataclass(frozen=True, slots=True)
class Eta:
    """One estimate: ``eta_s`` whole seconds (rounded up), ``distance_m`` the great
    circle to 0.1 m, ``speed_mps`` the speed it was divided by."""

    eta_s: int
    distance_m: float
    speed_mps: float
    method: str = GREAT_CIRCLE


def bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial great-circle bearing from point 1 to point 2, degrees clockwise
    from north in ``[0, 360)``; 0 for identical points."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    d_lambda = math.radians(lon2 - lon1)
    y = math.sin(d_lambda) * math.cos(phi2)
    x = math.cos(phi1) * math.sin(phi2) - math.sin(phi1) * math.cos(phi2) * math.cos(d_lambda)
    return math.degrees(math.atan2(y, x)) % 360.0


def angle_between_deg(a: float, b: float) -> float:
    """The smaller angle between two headings, in ``[0, 180]``."""
    diff = abs(a - b) % 360.0
    return min(diff, 360.0 - diff)


def estimate(
    *,
    from_lat: float,
    from_lon: float,
    to_lat: float,
    to_lon: float,
    mode_speed_mps: float = DEFAULT_SPEED_MPS,
    heading: float | None = None,
    speed_mps: float | None = None,
) -> Eta:
    """The responder at ``from`` reaching the alert at ``to`` (see the module docstring).

    ``heading``/``speed_mps`` are the responder's fix's own (None: not
    reported); its speed counts only with a heading pointing at the alert.
    Raises ``InvalidCoordinate`` for bad points and ``ValueError`` for a mode
    speed that is not positive.
    """
    if not mode_speed_mps > 0:
        raise ValueError(f"mode speed must be positive, got {mode_speed_mps!r}")
    distance = haversine_m(from_lat, from_lon, to_lat, to_lon)
    speed = mode_speed_mps
    if (
        speed_mps is not None
        and heading is not None
        and math.isfinite(speed_mps)
        and speed_mps > mode_speed_mps
        and angle_between_deg(heading, bearing_deg(from_lat, from_lon, to_lat, to_lon))
        <= TOWARDS_DEG
    ):
        speed = speed_mps
    eta_s = 0 if distance <= ARRIVED_M else math.ceil(distance / speed)
    return Eta(eta_s=eta_s, distance_m=round(distance, 1), speed_mps=speed)


def worth_recording(last_recorded_s: int | None, eta_s: int) -> bool:
    """Whether an estimate of ``eta_s`` goes in the timeline after ``last_recorded_s``
    (None: none recorded yet for this assignment, so yes). Otherwise only when it
    changed by at least 60 s and at least 20 % of the last one recorded."""
    if last_recorded_s is None:
        return True
    change = abs(eta_s - last_recorded_s)
    if change < RECORD_MIN_CHANGE_S:
        return False
    if last_recorded_s == 0:
        return True
    return change >= RECORD_MIN_CHANGE_RATIO * last_recorded_s
