"""Haversine distance and geofence check-ins.

Hand computation (R = 6 371 008.8 m, so 1 degree of latitude = 111 195 m):
People's Square (31.2304 N, 121.4737 E) to the Oriental Pearl Tower (31.2397 N, 121.4998 E):
  north  0.0093 deg * 111 195          = 1 034.1 m
  east   0.0261 deg * 111 195 * cos(31.235 deg = 0.85505) = 2 481.5 m
  distance = sqrt(1 034.1^2 + 2 481.5^2) = 2 688 m.
0.01 deg due north anywhere = 1 111.95 m.
"""

import pytest

from fieldapp.rules.geo import GeofenceResult, distance_m, geofence_check

PEOPLES_SQUARE = (31.2304, 121.4737)
PEARL_TOWER = (31.2397, 121.4998)
# 0.01 degree due north of People's Square: 1 111.95 m away.
NORTH_1112 = (31.2404, 121.4737)


@pytest.mark.parametrize(
    ("a", "b", "expected", "rel"),
    [
        (PEOPLES_SQUARE, PEARL_TOWER, 2688.0, 0.01),
        (PEARL_TOWER, PEOPLES_SQUARE, 2688.0, 0.01),  # symmetric
        (PEOPLES_SQUARE, NORTH_1112, 1111.95, 0.001),
        # 0.01 degree east at 31.2304 N: 1 111.95 * cos(31.2304 deg) = 1111.95 * 0.85509.
        (PEOPLES_SQUARE, (31.2304, 121.4837), 950.8, 0.002),
    ],
)
def test_distance_m(a: tuple, b: tuple, expected: float, rel: float) -> None:
    assert distance_m(*a, *b) == pytest.approx(expected, rel=rel)


def test_same_point_is_zero() -> None:
    assert distance_m(*PEOPLES_SQUARE, *PEOPLES_SQUARE) == 0.0


@pytest.mark.parametrize("bad", [(91.0, 121.0), (31.0, 181.0), (-90.5, 0.0)])
def test_invalid_coordinates(bad: tuple) -> None:
    with pytest.raises(ValueError):
        distance_m(*bad, *PEOPLES_SQUARE)


@pytest.mark.parametrize(
    ("radius", "accuracy", "inside"),
    [
        (1112, None, True),  # 1 111.95 m <= 1 112 m
        (1111, None, False),  # 1 111.95 m >  1 111 m: outside, still reported
        (1100, 12, True),  # 1 111.95 - 12 = 1 099.95 <= 1 100
        (1100, 11, False),  # 1 111.95 - 11 = 1 100.95 >  1 100
        (1000, 500, False),  # accuracy credit capped at 100 m: 1 011.95 > 1 000
        (1012, 500, True),  # capped credit: 1 011.95 <= 1 012
        (1000, 0, False),
    ],
)
def test_geofence_check(radius: float, accuracy: float | None, inside: bool) -> None:
    got = geofence_check(*PEOPLES_SQUARE, radius, *NORTH_1112, accuracy_m=accuracy)
    # The reported distance is the raw one, never reduced by the accuracy.
    assert got == GeofenceResult(inside=inside, distance_m=1112)


def test_far_away_check_in_is_flagged_with_its_distance() -> None:
    got = geofence_check(*PEOPLES_SQUARE, 200, *PEARL_TOWER, accuracy_m=20)
    assert got.inside is False
    assert got.distance_m == pytest.approx(2688, rel=0.01)


def test_accuracy_cap_is_configurable() -> None:
    got = geofence_check(
        *PEOPLES_SQUARE, 1000, *NORTH_1112, accuracy_m=500, max_accuracy_credit_m=200
    )
    assert got.inside is True


@pytest.mark.parametrize(("radius", "accuracy"), [(-1, None), (100, -5)])
def test_geofence_refuses_negative_sizes(radius: float, accuracy: float | None) -> None:
    with pytest.raises(ValueError):
        geofence_check(*PEOPLES_SQUARE, radius, *NORTH_1112, accuracy_m=accuracy)


def test_distance_equal_to_radius_is_inside() -> None:
    # Exactly on the boundary (0 m from the centre of a 0 m fence): the boundary counts as in.
    assert geofence_check(*PEOPLES_SQUARE, 0, *PEOPLES_SQUARE) == GeofenceResult(True, 0)
