"""Coarse positions: where an alert is, told to an agent that has not taken it yet.

An offer goes to agents who may decline it, so it tells the neighbourhood,
not the door: the centre of the H3 cell of :data:`COARSE_RESOLUTION`
(hexagons about 0.7 km² in area) that holds the exact point.

Pure and deterministic, on purpose: the same exact point always gives the same
coarse point, so offers repeated (resync, several agents, several alerts from
one home) never average out to the truth, as random noise would. The distance
an offer tells is rounded to :data:`DISTANCE_STEP_M` for the same reason: an
exact distance from an agent's known position would draw an arc through the cell.
"""

from __future__ import annotations

import math
from typing import Final

from geo.cells import cell_center, cell_of

#: H3 resolution of the coarse grid (cells ~531 m on an edge on average).
COARSE_RESOLUTION: Final = 8
#: Every exact point lies within this many metres of its coarse point: an H3
#: resolution-8 cell reaches at most ~590 m from its centre anywhere on Earth.
COARSE_PRECISION_M: Final = 600
#: The step offered distances are told in.
DISTANCE_STEP_M: Final = 100


def coarse_point(latitude: float, longitude: float) -> tuple[float, float]:
    """The centre of the coarse cell holding the point; within
    :data:`COARSE_PRECISION_M` of it. Raises ``InvalidCoordinate`` for a bad point."""
    return cell_center(cell_of(latitude, longitude, COARSE_RESOLUTION))


def coarse_distance_m(distance_m: float | None) -> float | None:
    """``distance_m`` rounded to the nearest :data:`DISTANCE_STEP_M` (halves up); None stays."""
    if distance_m is None:
        return None
    return float(math.floor(distance_m / DISTANCE_STEP_M + 0.5) * DISTANCE_STEP_M)
