"""Visit rules: VIS-08 sample size and satisfaction, VIS-09 forced on-site visits, time on site."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from fieldapp.rules.errors import RuleViolation
from fieldapp.rules.visits import (
    OnsiteReason,
    OnsiteVisit,
    ServiceRecord,
    forced_onsite_visits,
    return_visit_sample_rate,
    return_visit_sample_size,
    time_on_site,
    visit_satisfaction,
)


@pytest.mark.parametrize(
    ("served", "rate", "size"),
    [
        (0, 30, 0),
        (1, 30, 1),  # 0.3 rounds up
        (10, 30, 3),
        (99, 30, 30),  # 29.7 -> 30
        (100, 20, 20),  # 100 is in the 100-300 band
        (101, 20, 21),  # 20.2 -> 21
        (300, 20, 60),  # 300 is in the 100-300 band, exactly 60
        (301, 10, 31),  # 30.1 -> 31
        (1000, 10, 100),
        (1001, 10, 101),  # 100.1 -> 101
    ],
)
def test_sample_rate_and_size(served: int, rate: int, size: int) -> None:
    assert return_visit_sample_rate(served) == rate
    assert return_visit_sample_size(served) == size


def test_sample_rates_are_configurable() -> None:
    assert return_visit_sample_size(50, small_rate=50) == 25
    assert return_visit_sample_size(150, small_below=200) == 45  # 150 now a small volume


def test_negative_volume_is_refused() -> None:
    with pytest.raises(ValueError):
        return_visit_sample_size(-1)


def test_forced_onsite_visits() -> None:
    month = date(2026, 11, 1)
    services = [
        ServiceRecord("c1", "s1", date(2026, 11, 5)),  # agreement signed this month
        ServiceRecord("c2", "s_new", date(2025, 1, 1)),  # new staff member
        ServiceRecord("c3", "s_bad", date(2025, 1, 1)),  # staff complained about last time
        ServiceRecord("c4", "s_new", None),  # no agreement: not covered by VIS-09
        ServiceRecord("c5", "s1", date(2025, 1, 1)),  # nothing special
        ServiceRecord("c6", "s_bad", date(2026, 11, 1)),  # signed on the first day
        ServiceRecord("c6", "s_new", date(2026, 11, 1)),  # second service, other staff
        ServiceRecord("c7", "s1", date(2026, 10, 31)),  # signed last month
        ServiceRecord("c1", "s1", date(2026, 11, 5)),  # repeat service adds nothing
    ]
    got = forced_onsite_visits(
        services,
        period_start=month,
        new_staff_ids=frozenset({"s_new"}),
        complained_staff_ids=frozenset({"s_bad"}),
    )
    assert got == [
        OnsiteVisit("c1", (OnsiteReason.NEW_AGREEMENT,)),
        OnsiteVisit("c2", (OnsiteReason.NEW_STAFF,)),
        OnsiteVisit("c3", (OnsiteReason.STAFF_COMPLAINED,)),
        OnsiteVisit(
            "c6",
            (OnsiteReason.NEW_AGREEMENT, OnsiteReason.NEW_STAFF, OnsiteReason.STAFF_COMPLAINED),
        ),
    ]


@pytest.mark.parametrize(
    ("ratings", "score", "satisfied"),
    [
        ((5, 5, 5), 15, True),
        ((4, 4, 4), 12, True),  # mean exactly 4
        ((5, 4, 3), 12, True),  # mean 4, lowest 3
        ((4, 4, 3), 11, False),  # mean 3.67
        ((5, 5, 2), 12, False),  # mean 4 but a dissatisfied dimension
        ((1, 1, 1), 3, False),
    ],
)
def test_visit_satisfaction(ratings: tuple[int, int, int], score: int, satisfied: bool) -> None:
    got = visit_satisfaction(*ratings)
    assert got.score == score
    assert got.satisfied is satisfied


def test_satisfaction_thresholds_are_configurable() -> None:
    assert visit_satisfaction(4, 4, 3, min_total=11).satisfied is True
    assert visit_satisfaction(5, 5, 2, min_each=2).satisfied is True


@pytest.mark.parametrize("bad", [0, 6])
def test_rating_out_of_range(bad: int) -> None:
    with pytest.raises(ValueError):
        visit_satisfaction(5, bad, 5)


@pytest.mark.parametrize("bad", [4.5, True, "4"])
def test_rating_must_be_an_int(bad: object) -> None:
    with pytest.raises(TypeError):
        visit_satisfaction(5, 5, bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("check_in", "check_out", "expected"),
    [
        (
            datetime(2026, 11, 23, 1, 0, tzinfo=UTC),
            datetime(2026, 11, 23, 1, 45, tzinfo=UTC),
            timedelta(minutes=45),
        ),
        (
            datetime(2026, 11, 23, 1, 0, tzinfo=UTC),
            datetime(2026, 11, 23, 1, 0, tzinfo=UTC),
            timedelta(0),
        ),
        # Different zones for the same instant frame: 09:30 Shanghai is 01:30 UTC.
        (
            datetime(2026, 11, 23, 1, 0, tzinfo=UTC),
            datetime(2026, 11, 23, 9, 30, tzinfo=ZoneInfo("Asia/Shanghai")),
            timedelta(minutes=30),
        ),
    ],
)
def test_time_on_site(check_in: datetime, check_out: datetime, expected: timedelta) -> None:
    assert time_on_site(check_in, check_out) == expected


def test_checkout_before_checkin_is_a_rule_violation() -> None:
    with pytest.raises(RuleViolation) as err:
        time_on_site(
            datetime(2026, 11, 23, 2, 0, tzinfo=UTC), datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
        )
    assert err.value.code == "visit.checkout_before_checkin"


def test_time_on_site_refuses_naive_times() -> None:
    with pytest.raises(ValueError):
        time_on_site(datetime(2026, 11, 23, 1, 0), datetime(2026, 11, 23, 2, 0, tzinfo=UTC))
