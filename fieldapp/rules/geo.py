"""Distances and geofences for check-ins (DEL-01, VIS-01, VEH-02, PAT).

A check-in outside the fence is still accepted, because a worker at the right place with a
poor GPS fix must not be locked out offline; it is flagged with its distance for the
supervisor instead.
"""

import math
from dataclasses import dataclass

# Mean Earth radius (IUGG), metres. Haversine on a sphere is within ~0.5 % of the ellipsoid,
# far better than phone GPS.
EARTH_RADIUS_M = 6_371_008.8
# The phone's reported accuracy is credited to the worker, but at most this much: a fix
# claiming "± 2 km" must not turn a check-in across town into an "inside".
DEFAULT_MAX_ACCURACY_CREDIT_M = 100.0


def _check_point(lat: float, lon: float) -> None:
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise ValueError(f"not a valid latitude/longitude: {lat}, {lon}")


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance in metres between two WGS-84 points in degrees."""
    _check_point(lat1, lon1)
    _check_point(lat2, lon2)
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlmb = math.radians(lon2 - lon1)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    # min() guards against h drifting a hair above 1 for antipodal points.
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, h)))


@dataclass(frozen=True)
class GeofenceResult:
    """``distance_m`` is the measured distance to the site centre, rounded to whole metres."""

    inside: bool
    distance_m: int


def geofence_check(
    site_lat: float,
    site_lon: float,
    radius_m: float,
    lat: float,
    lon: float,
    accuracy_m: float | None = None,
    *,
    max_accuracy_credit_m: float = DEFAULT_MAX_ACCURACY_CREDIT_M,
) -> GeofenceResult:
    """Is the fix inside the site's circle?

    Inside when ``distance - credit <= radius`` where ``credit = min(accuracy_m,
    max_accuracy_credit_m)`` (0 without an accuracy): the true position may be anywhere in
    the accuracy circle, so we give the benefit of the doubt, up to a cap. A distance equal
    to the radius is inside. ``distance_m`` in the result is the raw distance, not reduced by
    the accuracy, so the supervisor sees what the phone reported.
    """
    if radius_m < 0:
        raise ValueError("radius_m must be >= 0")
    if accuracy_m is not None and accuracy_m < 0:
        raise ValueError("accuracy_m must be >= 0")
    distance = distance_m(site_lat, site_lon, lat, lon)
    credit = min(accuracy_m, max_accuracy_credit_m) if accuracy_m is not None else 0.0
    return GeofenceResult(inside=distance - credit <= radius_m, distance_m=round(distance))
