"""Names, polygons and durations: the value types every section's fields are made of, and the
strict base model (an unknown key is an error, so a typo is never silently ignored).
"""

from __future__ import annotations

import re
from typing import Annotated

import numpy as np
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from vision.config.loading import MAX_POLYGON_POINTS, at_most
from vision.geometry import polygon_area

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


def _check_name(value: str) -> str:
    if not NAME.match(value):
        raise ValueError(f"{value!r} is not a valid name: use letters, digits, '_' and '-' (at most 64)")
    return value


Name = Annotated[str, AfterValidator(_check_name)]


def _check_polygon(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    if len(points) < 3:
        raise ValueError("needs at least 3 points")
    for i, (x, y) in enumerate(points):
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise ValueError(f"point {i} ({x}, {y}) is outside the image: use normalized 0..1 coordinates")
    if polygon_area(np.asarray(points, np.float64)) < 1e-6:
        raise ValueError("has no area: its points are on one line")
    return points


Polygon = Annotated[
    list[tuple[float, float]],
    at_most(MAX_POLYGON_POINTS, "points", "MAX_POLYGON_POINTS"),
    AfterValidator(_check_polygon),
]


DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


UNIT_S = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _parse_duration(value: object) -> object:
    """Seconds as a number, or a string such as "90s", "15m", "24h", "30d" (retention reads better so)."""
    if not isinstance(value, str):
        return value
    match = DURATION.match(value)
    if match is None:
        raise ValueError(
            f"{value!r} is not a duration: use seconds (86400) or a number and s, m, h or d (24h)"
        )
    return float(match[1]) * UNIT_S[match[2]]


Duration = Annotated[float, BeforeValidator(_parse_duration), Field(gt=0)]
