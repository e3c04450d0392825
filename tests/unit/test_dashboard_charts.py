"""The trend chart's scale: small rates (complaints per service) get a scale they can be read on."""

from datetime import date

from fieldapp.dashboard.charts import line_chart, nice_scale
from fieldapp.rules.kpi import complaint_rate, slip_accuracy

MONTHS = [date(2026, 9, 1), date(2026, 10, 1)]


def test_the_scale_is_the_smallest_round_one_that_holds_every_value():
    assert nice_scale([[complaint_rate(3, 1000), complaint_rate(8, 1000)]]) == 0.01
    assert nice_scale([[complaint_rate(3, 100)]]) == 0.05
    assert nice_scale([[complaint_rate(0, 0)]]) == 0.01  # nothing to show
    assert nice_scale([[slip_accuracy(2, 4)]]) == 0.5
    assert nice_scale([[slip_accuracy(4, 4)]]) == 1.0


def test_a_value_at_the_top_of_the_scale_is_drawn_at_the_top_with_its_ticks():
    rates = [complaint_rate(1, 200), complaint_rate(1, 100)]  # 0.5 % and 1 %
    chart = line_chart(MONTHS, [("complaint_rate", "Complaint rate", rates)], scale=0.01)
    first, second = chart.series[0].points
    assert second.y == chart.top  # 1 % on a 1 % scale
    assert first.y == round((chart.top + chart.bottom) / 2, 1)
    assert [label for _y, label in chart.y_ticks] == ["0 %", "0.25 %", "0.5 %", "0.75 %", "1 %"]
