"""Field types shared by request bodies and client frames.

Numbers are strict: a JSON string or boolean where a number belongs is a 422
(or an ``invalid_data`` error frame), never coerced (``"52.5"``, ``true``);
NaN and infinities are refused. Out of range is a 422 too: WGS84 degrees,
and the bounds below.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

#: Any finite JSON number (an integer or a float).
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Latitude = Annotated[Number, Field(ge=-90, le=90)]
Longitude = Annotated[Number, Field(ge=-180, le=180)]
#: Degrees clockwise from north.
Heading = Annotated[Number, Field(ge=0, lt=360)]
#: A fix's accuracy (metres) or speed (metres per second) as reported with it.
NonNegative = Annotated[Number, Field(ge=0, le=1_000_000)]
#: The accuracy (metres) of where an alert or a check-in is raised: at most 100 km.
PlaceAccuracy = Annotated[Number, Field(ge=0, le=100_000)]
