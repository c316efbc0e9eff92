"""The one error root of the geo package.

Geometry is pure and deterministic, so no geo error is ever retriable: the same
input fails the same way every time. Callers that accept coordinates from the
outside (the actors, the gateway) check them first with
:func:`geo.cells.is_valid_point` or translate these errors at their edge.
"""

from __future__ import annotations


class GeoError(Exception):
    """Root of every error raised by ``geo``; ``retriable`` is always False."""

    retriable: bool = False


class InvalidCoordinate(GeoError, ValueError):
    """A latitude/longitude pair outside WGS84 ranges, or not a finite number."""

    def __init__(self, latitude: float, longitude: float) -> None:
        self.latitude = latitude
        self.longitude = longitude
        super().__init__(f"invalid coordinate: latitude={latitude!r}, longitude={longitude!r}")

    def __reduce__(self) -> tuple[type[InvalidCoordinate], tuple[float, float]]:
        return (type(self), (self.latitude, self.longitude))


class InvalidCell(GeoError, ValueError):
    """A string that is not a valid H3 cell index, or a bad resolution or ring size."""
