"""CMP-17 monthly complaint rate by unit, its report deadline, and CMP-16 archive access."""

from datetime import UTC, date, datetime

import pytest

from fieldapp.rules.complaints import (
    AttributedComplaint,
    UnitComplaintRate,
    complaint_rate_by_unit,
    complaint_rate_report_due,
    may_read_archived,
)


def test_the_rate_is_due_on_the_fifth_at_five_pm_local():
    assert complaint_rate_report_due(date(2026, 11, 17), "Asia/Shanghai") == datetime(
        2026, 12, 5, 9, tzinfo=UTC
    )
    # December's rate is due in January of the next year.
    assert complaint_rate_report_due(date(2026, 12, 1), "Asia/Shanghai") == datetime(
        2027, 1, 5, 9, tzinfo=UTC
    )


def test_rate_by_unit_by_hand():
    complaints = [
        AttributedComplaint("保安一队"),
        AttributedComplaint("保安一队"),
        AttributedComplaint("保安一队"),
        AttributedComplaint("保安一队", valid=False),  # closed as invalid: not counted
        AttributedComplaint("客服外勤组"),
        AttributedComplaint("无服务记录组"),
    ]
    services = {"保安一队": 120, "客服外勤组": 3, "配送一组": 40, "空组": 0}
    assert complaint_rate_by_unit(complaints, services) == [
        UnitComplaintRate("保安一队", 3, 120, 2.5),  # 3 / 120
        UnitComplaintRate("客服外勤组", 1, 3, 33.33),  # 1 / 3 = 33.333 %
        UnitComplaintRate("无服务记录组", 1, 0, None),  # no services: no rate
        UnitComplaintRate("配送一组", 0, 40, 0.0),
    ]


def test_rates_round_half_up():
    (rate,) = complaint_rate_by_unit([AttributedComplaint("A")], {"A": 8})
    assert rate.rate_percent == 12.5
    (rate,) = complaint_rate_by_unit([AttributedComplaint("A")], {"A": 1600})
    assert rate.rate_percent == 0.06  # 0.0625 -> 0.06 (2 decimals, half up of 6.25 -> 6)


def test_negative_services_are_refused():
    with pytest.raises(ValueError):
        complaint_rate_by_unit([], {"A": -1})


def test_the_archive_is_for_department_heads_and_the_general_manager():
    assert may_read_archived("admin", set(), 5)
    assert may_read_archived("supervisor", {5, 6}, 5)
    assert not may_read_archived("supervisor", {6}, 5)
    assert may_read_archived("supervisor", {6}, None)
    for worker in ("rep", "guard", "courier"):
        assert not may_read_archived(worker, {5}, 5)
