"""KPI formulas, the monthly assessment score and the penalty schedules (section 6, KPI).

Every rate is a :class:`KpiResult`: ``value`` is a fraction 0..1 (0.95 means 95 %), with the
numerator and denominator it came from so a supervisor can see "19 of 20", and ``met`` against the
target. A month with nothing to measure has ``value=None`` and ``met=None``: showing 0 % would
punish a courier who had no deliveries, showing 100 % would reward them. Targets are compared
exactly (as fractions), so 57 of 60 meets a 95 % target even though 57/60 is not exact in binary.

Targets: where a seed states a rate (KPI-01 95 %, KPI-02 100 %) that is the default. Where it
states a per-case duty ("must deliver within 24 h", "reply within 2 working days", every handover
signed, 6 h on site every working day) the default target is 100 %, the literal rule; an admin may
lower it. Where the seeds give nothing (patrol completion, complaint rate, return-visit
satisfaction) the default target is ``None`` and ``met`` is ``None``.

The deadline computations themselves (working days, 24-hour windows) live in other modules; the
functions here take the counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from types import MappingProxyType

from fieldapp.rules.patrols import RoundState, RoundStatus

# Default targets, each a fraction 0..1 (None: the seeds give no target).
DELIVERY_SATISFACTION_TARGET: float | None = 0.95  # KPI-01 「客户满意度不低于95%」
SLIP_ACCURACY_TARGET: float | None = 1.0  # KPI-02 「货票准确率100%」
ON_TIME_DELIVERY_TARGET: float | None = 1.0  # DEL-11 every order within its promise
HANDOVER_SIGNATURE_TARGET: float | None = 1.0  # DEL-05 every handover signed
PATROL_COMPLETION_TARGET: float | None = None  # PAT-02: no seed number
PATROL_LATENESS_MAX: float | None = None  # share of rounds done late; no seed number
COMPLAINT_START_TARGET: float | None = 1.0  # CMP-07 investigation within 1 working day
COMPLAINT_REPLY_TARGET: float | None = 1.0  # CMP-07 satisfactory reply within 2 working days
COMPLAINT_RATE_MAX: float | None = None  # CMP-17: the seed asks for the rate, sets no limit
RETURN_VISIT_SATISFACTION_TARGET: float | None = None  # KPI-18: no seed number
SUPERVISOR_ONSITE_DAYS_TARGET: float | None = 1.0  # PAT-09 every working day
GUARD_ATTENDANCE_TARGET: float | None = 1.0  # PAT-15 every shift signed in
INCIDENT_FREE_SHIFT_TARGET: float | None = 1.0  # PAT-14 zero theft, no safety incident
INSPECTION_PASS_TARGET: float | None = None  # PAT-08/PAT-22: no seed number


@dataclass(frozen=True)
class KpiResult:
    """One KPI for one person (or route, or unit) and period.

    ``higher_is_better=False`` marks rates to keep low (complaint rate, lateness): ``met`` then
    means ``value <= target`` and :func:`assessment_score` uses ``1 - value``.
    """

    value: float | None
    numerator: int
    denominator: int
    target: float | None
    met: bool | None
    higher_is_better: bool = True


def _rate(
    numerator: int,
    denominator: int,
    target: float | None,
    *,
    higher_is_better: bool = True,
    proportion: bool = True,
) -> KpiResult:
    if numerator < 0 or denominator < 0:
        raise ValueError("counts cannot be negative")
    if proportion and numerator > denominator:
        raise ValueError(f"numerator {numerator} exceeds denominator {denominator}")
    if denominator == 0:
        return KpiResult(None, numerator, denominator, target, None, higher_is_better)
    exact = Fraction(numerator, denominator)
    met: bool | None = None
    if target is not None:
        # str() turns 0.95 back into the decimal the admin typed, so the boundary is exact.
        limit = Fraction(str(target))
        met = exact >= limit if higher_is_better else exact <= limit
    return KpiResult(float(exact), numerator, denominator, target, met, higher_is_better)


# --- Deliveries (KPI-01, KPI-02, KPI-03) -------------------------------------------------------


def delivery_satisfaction(
    satisfied: int, responses: int, target: float | None = DELIVERY_SATISFACTION_TARGET
) -> KpiResult:
    """KPI-01: satisfied responses / all responses (e-receipt ratings, return visits, surveys),
    per driver, route and month. Exactly 95 % meets the target ("不低于")."""
    return _rate(satisfied, responses, target)


def slip_accuracy(
    accurate_stops: int, stops: int, target: float | None = SLIP_ACCURACY_TARGET
) -> KpiResult:
    """KPI-02: stops handed over with no variety, quantity or code discrepancy / all stops."""
    return _rate(accurate_stops, stops, target)


def on_time_delivery_rate(
    on_time: int, deliveries: int, target: float | None = ON_TIME_DELIVERY_TARGET
) -> KpiResult:
    """KPI-03 "delivery timeliness": deliveries within their DEL-11 promise / all deliveries."""
    return _rate(on_time, deliveries, target)


def handover_signature_rate(
    signed: int, handovers: int, target: float | None = HANDOVER_SIGNATURE_TARGET
) -> KpiResult:
    """KPI-03 "handover signatures": handovers with the customer's signature (DEL-05) / all."""
    return _rate(signed, handovers, target)


# --- Patrols and supervisors (PAT-03, PAT-09) --------------------------------------------------


@dataclass(frozen=True)
class PatrolRoundCounts:
    due: int  # rounds whose outcome is final: done or missed
    completed: int  # rounds done, on time or late
    late: int  # rounds done after their window


def patrol_round_counts(statuses: Iterable[RoundStatus]) -> PatrolRoundCounts:
    """Count final round outcomes. Pending, in-progress and late-but-open rounds are left out:
    their outcome is not known yet, and a month-end report must not call them missed."""
    due = completed = late = 0
    for status in statuses:
        if status.state is RoundState.DONE:
            due += 1
            completed += 1
            late += int(status.late)
        elif status.state is RoundState.MISSED:
            due += 1
    return PatrolRoundCounts(due, completed, late)


def patrol_completion_rate(
    completed: int, due: int, target: float | None = PATROL_COMPLETION_TARGET
) -> KpiResult:
    """PAT-03: rounds completed (late ones included) / rounds due."""
    return _rate(completed, due, target)


def patrol_lateness_rate(
    late: int, completed: int, max_rate: float | None = PATROL_LATENESS_MAX
) -> KpiResult:
    """PAT-03: rounds completed after their window / rounds completed (lower is better)."""
    return _rate(late, completed, max_rate, higher_is_better=False)


def supervisor_onsite_rate(
    days_meeting_rule: int, working_days: int, target: float | None = SUPERVISOR_ONSITE_DAYS_TARGET
) -> KpiResult:
    """PAT-09: working days with at least 6 h on site / working days."""
    return _rate(days_meeting_rule, working_days, target)


# --- Complaints (CMP-07, CMP-17) and return visits (KPI-18) -------------------------------------


def complaints_started_in_time(
    started_in_time: int, complaints: int, target: float | None = COMPLAINT_START_TARGET
) -> KpiResult:
    """CMP-07: complaints whose investigation started within 1 working day / complaints due."""
    return _rate(started_in_time, complaints, target)


def complaints_answered_in_time(
    answered_in_time: int, complaints: int, target: float | None = COMPLAINT_REPLY_TARGET
) -> KpiResult:
    """CMP-07: complaints given a satisfactory reply within 2 working days / complaints due."""
    return _rate(answered_in_time, complaints, target)


def complaint_rate(
    complaints: int, service_units: int, max_rate: float | None = COMPLAINT_RATE_MAX
) -> KpiResult:
    """CMP-17: the previous month's complaint rate of one unit or person (lower is better).

    The seed (004 篇7) only says the after-sales department reviews last month's cases, provides
    「客户投诉率」 by the 5th at 17:00, and attributes each case to a unit or person by its cause.
    It gives no formula, so (interp.): ``complaints`` = complaint cases of the month attributed to
    this unit or person (invalid ones closed under CMP-04 excluded); ``service_units`` = the
    services it delivered that month (deliveries, visits or orders: the site chooses one and keeps
    it). The rate may exceed 1 if one service drew several complaints.
    """
    return _rate(complaints, service_units, max_rate, higher_is_better=False, proportion=False)


def complaint_rates(
    complaints_by_unit: Mapping[str, int],
    services_by_unit: Mapping[str, int],
    max_rate: float | None = COMPLAINT_RATE_MAX,
) -> dict[str, KpiResult]:
    """CMP-17 for every unit (or person) named in either mapping; a missing count is 0."""
    units = sorted(set(complaints_by_unit) | set(services_by_unit))
    return {
        unit: complaint_rate(
            complaints_by_unit.get(unit, 0), services_by_unit.get(unit, 0), max_rate
        )
        for unit in units
    }


@dataclass(frozen=True)
class ReturnVisitAnswer:
    """One return visit's answers (VIS-08): satisfied or not; ``None`` = not asked/answered."""

    timeliness: bool | None
    skill: bool | None
    attitude: bool | None


@dataclass(frozen=True)
class ReturnVisitSatisfaction:
    timeliness: KpiResult
    skill: KpiResult
    attitude: KpiResult


def return_visit_satisfaction(
    answers: Iterable[ReturnVisitAnswer], target: float | None = RETURN_VISIT_SATISFACTION_TARGET
) -> ReturnVisitSatisfaction:
    """KPI-18: per staff member and month, satisfied answers / answers on each of timeliness,
    skill and attitude. An unanswered question leaves that dimension's denominator alone."""
    answers = list(answers)

    def dimension(name: str) -> KpiResult:
        given = [getattr(a, name) for a in answers if getattr(a, name) is not None]
        return _rate(sum(given), len(given), target)

    return ReturnVisitSatisfaction(
        dimension("timeliness"), dimension("skill"), dimension("attitude")
    )


def return_visits_satisfied(
    satisfied: int, rated: int, target: float | None = RETURN_VISIT_SATISFACTION_TARGET
) -> KpiResult:
    """KPI-18: rated visits of one staff member judged satisfied (VIS-08: timeliness, skill and
    attitude total at least 12, none below 3) / rated visits, for the month."""
    return _rate(satisfied, rated, target)


# --- Guards' month from patrol records (KPI-12 inputs) ------------------------------------------


def guard_attendance_rate(
    signed_in: int, shifts: int, target: float | None = GUARD_ATTENDANCE_TARGET
) -> KpiResult:
    """PAT-15: ended shifts the guard signed in to / ended shifts of the month."""
    return _rate(signed_in, shifts, target)


def incident_free_shift_rate(
    clean: int, shifts: int, target: float | None = INCIDENT_FREE_SHIFT_TARGET
) -> KpiResult:
    """PAT-14: ended shifts without theft, fire or safety accident / ended shifts."""
    return _rate(clean, shifts, target)


def inspection_pass_rate(
    passed: int, inspections: int, target: float | None = INSPECTION_PASS_TARGET
) -> KpiResult:
    """PAT-08/PAT-22: spot checks passed (present, in uniform, no violation) / spot checks."""
    return _rate(passed, inspections, target)


# --- Monthly assessment score (KPI-03 couriers, KPI-09/KPI-12 guards) ---------------------------

# Weights are relative (they need not add up to 1). The seeds name the inputs but give no
# weights, so every input weighs the same; admins change them per organisation.
# KPI-03: 「市场走访、客户信息反馈、送货及时性、送货准确性、交接签字」.
COURIER_ASSESSMENT_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {
        "market_visits": 1.0,  # the assessment team's market-visit score
        "customer_feedback": 1.0,  # e.g. delivery_satisfaction
        "timeliness": 1.0,  # on_time_delivery_rate
        "accuracy": 1.0,  # slip_accuracy
        "handover_signatures": 1.0,  # handover_signature_rate
    }
)
# KPI-12: the inputs to the guard's monthly appraisal (KPI-09).
GUARD_ASSESSMENT_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {
        "incidents": 1.0,  # shifts without theft, fire or accident (PAT-14) / shifts
        "inspections": 1.0,  # post inspections passed (PAT-08, PAT-22) / inspections
        "attendance": 1.0,  # shifts signed in (PAT-15) / shifts
        "training": 1.0,  # study and training sessions attended (PAT-18) / sessions
        "client_feedback": 1.0,  # client unit's rating of the guard (PAT-21), 0..1
    }
)


def assessment_score(
    inputs: Mapping[str, KpiResult | float | None],
    weights: Mapping[str, float],
    *,
    point_deductions: int = 0,
) -> float | None:
    """Monthly assessment score 0..100 (KPI-03, KPI-09, KPI-12).

    Interpretation: the weighted mean of the inputs, each a fraction 0..1 (a float such as an
    assessor's 0.8, or a :class:`KpiResult`; a lower-is-better KPI counts as ``1 - value``),
    times 100. An input with no data (``None`` or a KpiResult without value) is left out and the
    other weights share its part, so an empty month neither drags the score down nor lifts it.
    ``point_deductions`` are the KPI-07 deductions from the monthly performance score (5 for T2,
    10 for T3), subtracted afterwards; the score never goes below 0. ``None`` when no input has
    data.

    Every weighted key must be in ``inputs`` and every input must have a weight, so a misspelt
    key fails loudly instead of silently dropping an input.
    """
    if set(inputs) != set(weights):
        raise ValueError(f"inputs and weights differ: {sorted(set(inputs) ^ set(weights))}")
    if point_deductions < 0:
        raise ValueError("point_deductions cannot be negative")
    total_weight = 0.0
    weighted_sum = 0.0
    for key, weight in weights.items():
        if weight < 0:
            raise ValueError(f"weight for {key!r} is negative")
        fraction = _as_fraction(key, inputs[key])
        if fraction is None or weight == 0:
            continue
        total_weight += weight
        weighted_sum += weight * fraction
    if total_weight == 0:
        return None
    return max(0.0, 100 * weighted_sum / total_weight - point_deductions)


def _as_fraction(key: str, item: KpiResult | float | None) -> float | None:
    if isinstance(item, KpiResult):
        if item.value is None:
            return None
        # Complaint rates may exceed 1; clamp so one bad month cannot push the score negative.
        return item.value if item.higher_is_better else max(0.0, 1.0 - item.value)
    if item is None:
        return None
    if isinstance(item, bool) or not 0.0 <= item <= 1.0:
        # Catches the common slip of passing 85 (a percentage) instead of 0.85.
        raise ValueError(f"input {key!r} must be a fraction between 0 and 1, got {item!r}")
    return float(item)


# --- Penalty schedules (KPI-07, KPI-10) and workflow control (KPI-11) ---------------------------


class Sanction(StrEnum):
    """Non-monetary consequences named in the schedules."""

    WARNING = "warning"  # 警告
    REPRIMAND = "reprimand"  # 申诫
    MAJOR_DEMERIT = "major_demerit"  # 记大过
    COMPANY_NOTICE = "company_notice"  # 通报
    PERFORMANCE_PAY_FORFEITED = "performance_pay_forfeited"  # 扣除当月绩效工资
    DISMISSAL = "dismissal"  # 辞退/开除
    LIABILITY = "liability"  # economic and legal liability
    WAGES_WITHHELD = "wages_withheld"  # 不再造发工资
    REMOVED_AS_SQUAD_LEADER = "removed_as_squad_leader"  # 撤销班长职务
    WRITTEN_SELF_CRITICISM = "written_self_criticism"  # 书面检查
    TREATED_AS_RESIGNATION = "treated_as_resignation"  # 按自动离职处理
    REFERRED_TO_COMPANY = "referred_to_company"  # 交公司处理
    SERIOUS_HANDLING = "serious_handling"  # 严肃处理
    LEGAL_ACTION = "legal_action"  # 依法处理 / 法律责任


@dataclass(frozen=True)
class PenaltyStep:
    """The sanction for one offence number. ``amount_fen`` is the default fine; a seed range
    (KPI-07 T1, 30-100 yuan) defaults to its minimum and ``max_amount_fen`` is the ceiling the
    office may choose. ``points`` are deducted from the monthly score. ``per_unit_fen`` is added
    per unit (KPI-10 e: per person short)."""

    amount_fen: int
    points: int = 0
    sanctions: tuple[Sanction, ...] = ()
    max_amount_fen: int | None = None
    per_unit_fen: int = 0


@dataclass(frozen=True)
class PenaltyRule:
    """One row of a schedule. ``steps[k]`` applies to an offence with ``k`` earlier offences of
    the same rule by the same person; the last step repeats for any later offence."""

    code: str
    description_zh: str
    description_en: str
    steps: tuple[PenaltyStep, ...]


@dataclass(frozen=True)
class Penalty:
    rule_code: str
    offence_number: int  # 1 for a first offence
    amount_fen: int
    points: int
    sanctions: tuple[Sanction, ...] = ()
    max_amount_fen: int | None = None


def _yuan(amount: int) -> int:
    return amount * 100


def _rule(code: str, zh: str, en: str, *steps: PenaltyStep) -> PenaltyRule:
    return PenaltyRule(code, zh, en, steps)


def _fine(yuan: int, *sanctions: Sanction, points: int = 0) -> PenaltyStep:
    return PenaltyStep(_yuan(yuan), points, sanctions)


_S = Sanction
# KPI-07 (001 篇5). The seed gives no escalation for repeats, so each tier repeats as is.
KPI07_PENALTIES: tuple[PenaltyRule, ...] = (
    _rule(
        "KPI-07-T1",
        "服务态度差、效率低,业务不熟,嘲弄或不尊重客户",
        "Poor attitude or low efficiency; not knowing the business; mocking customers",
        PenaltyStep(_yuan(30), max_amount_fen=_yuan(100)),
    ),
    _rule(
        "KPI-07-T2",
        "接待冷漠或省略服务环节,故意刁难客户,与客户争吵",
        "Cold reception or skipped service steps; obstructing or arguing with a customer",
        _fine(200, _S.WARNING, _S.COMPANY_NOTICE, points=5),
    ),
    _rule(
        "KPI-07-T3",
        "否认投诉事实;主管监督不力或未解决",
        "Denying complaint facts; supervisor failing to supervise or resolve",
        _fine(300, _S.REPRIMAND, _S.COMPANY_NOTICE, points=10),
    ),
    _rule(
        "KPI-07-T4",
        "隐瞒已接到或可预见的投诉;不配合或拖延致投诉升级",
        "Concealing complaints; not cooperating or delaying so the complaint worsens",
        _fine(1000, _S.MAJOR_DEMERIT, _S.PERFORMANCE_PAY_FORFEITED, _S.COMPANY_NOTICE),
    ),
    _rule(
        "KPI-07-T5",
        "辱骂或殴打客户,打击报复,严重损害声誉,虚假承诺造成损失",
        "Abusing or hitting customers; retaliation; serious reputational loss; false promises",
        _fine(0, _S.DISMISSAL, _S.LIABILITY),
    ),
)

# KPI-10 (001 篇6), one rule per row and role: "-leader" squad leader (班长), "-guard" guard
# (队员), "-responsible" area responsible person (责任人). Repeats escalate only where the seed
# says so (rows g, n, t).
KPI10_PENALTIES: tuple[PenaltyRule, ...] = (
    _rule(
        "KPI-10a-leader",
        "无故不组织学习或每周达不到两次",
        "Weekly study not organised or < 2 sessions",
        _fine(50),
    ),
    _rule("KPI-10a-guard", "队员不参加学习", "Guard absent from study", _fine(10)),
    _rule("KPI-10b-leader", "班长无故不参加训练", "Squad leader absent from training", _fine(10)),
    _rule("KPI-10b-guard", "队员无故不参加训练", "Guard absent from training", _fine(5)),
    _rule(
        "KPI-10c-responsible",
        "因自身原因被服务单位撤岗",
        "Client withdraws a post by our fault",
        _fine(200),
    ),
    _rule(
        "KPI-10c-leader",
        "因自身原因被服务单位撤岗",
        "Client withdraws a post by our fault",
        _fine(100),
    ),
    _rule(
        "KPI-10c-guard",
        "因自身原因被服务单位撤岗",
        "Client withdraws a post by our fault",
        _fine(50),
    ),
    _rule(
        "KPI-10d-guard",
        "离职不交警械及上岗证",
        "Equipment or ID not returned on leaving",
        _fine(50),
    ),
    _rule(
        "KPI-10e-leader",
        "不服从勤务安排,少抽一人加罚5元",
        "Disobeying duty orders; plus 5 yuan per person short",
        PenaltyStep(_yuan(10), per_unit_fen=_yuan(5)),
    ),
    _rule(
        "KPI-10f-leader",
        "班长请假未经服务单位及大队办公室批准",
        "Squad leader leave without both approvals",
        _fine(50),
    ),
    _rule("KPI-10f-guard", "违反请假审批规定", "Leave-approval violation", _fine(30)),
    _rule(
        "KPI-10f-overstay",
        "超假按旷工处理(每超一天)",
        "Overstaying leave, per day over (absenteeism)",
        _fine(100, _S.WRITTEN_SELF_CRITICISM),
    ),
    _rule(
        "KPI-10f-overstay-3-days",
        "超假超过三天按自动离职处理",
        "Overstaying leave by more than 3 days: treated as resignation",
        _fine(0, _S.TREATED_AS_RESIGNATION, _S.WAGES_WITHHELD),
    ),
    _rule(
        "KPI-10g-guard",
        "拒不签到",
        "Refusing to sign in",
        _fine(50, _S.WARNING),
        _fine(0, _S.WAGES_WITHHELD),
    ),
    _rule(
        "KPI-10h-leader",
        "班长私自对队员罚款(未报大队办公室)",
        "Squad leader fining guards directly, not via the brigade office",
        _fine(100, _S.REMOVED_AS_SQUAD_LEADER),
    ),
    _rule("KPI-10i-leader", "拉帮结派、打架斗殴", "Cliques or fights in the squad", _fine(20)),
    _rule("KPI-10i-guard", "拉帮结派、打架斗殴", "Cliques or fights", _fine(10)),
    _rule(
        "KPI-10j-leader",
        "班内发生赌博、嫖娼、偷盗",
        "Gambling, prostitution or theft in the squad",
        _fine(50),
    ),
    _rule(
        "KPI-10j-guard",
        "赌博、嫖娼、偷盗(立案的依法处理)",
        "Gambling, prostitution or theft (legal action if a case is filed)",
        _fine(0, _S.LEGAL_ACTION),
    ),
    _rule("KPI-10k-leader", "队员监守自盗", "Guards stealing from the site", _fine(200)),
    _rule("KPI-10k-guard", "监守自盗", "Stealing from the guarded site", _fine(0, _S.LEGAL_ACTION)),
    _rule(
        "KPI-10l-leader", "班长上岗期间未着制服", "Squad leader not in uniform on duty", _fine(20)
    ),
    _rule("KPI-10l-guard", "着装不符合规定", "Guard dress not per rules", _fine(20)),
    _rule(
        "KPI-10m-guard",
        "脱岗、漏岗、睡岗、岗上留闲人、串岗(每项)",
        "Leaving, missing or sleeping on post, idle persons at post, straying (each)",
        _fine(20),
    ),
    _rule(
        "KPI-10n-leader",
        "班长公司通知不到",
        "Squad leader unreachable",
        _fine(10),
        _fine(30),
        _fine(0, _S.SERIOUS_HANDLING),
    ),
    _rule(
        "KPI-10n-responsible",
        "责任人公司通知不到",
        "Responsible person unreachable",
        _fine(50),
        _fine(100),
        _fine(0, _S.REFERRED_TO_COMPANY),
    ),
    _rule("KPI-10o-drinking", "酒后上岗", "Drinking before duty", _fine(50)),
    _rule("KPI-10o-smoking", "岗上抽烟", "Smoking on post", _fine(5)),
    _rule("KPI-10p-guard", "越权及超范围行事", "Exceeding authority or scope", _fine(10)),
    _rule("KPI-10q-guard", "无故不接岗、晚接岗", "Late or refused shift takeover", _fine(10)),
    _rule(
        "KPI-10r-leader",
        "岗位或宿舍卫生不合格(损坏照价赔偿)",
        "Post or room hygiene (damage charged at cost)",
        _fine(20),
    ),
    _rule(
        "KPI-10r-guard",
        "岗位或宿舍卫生不合格(损坏照价赔偿)",
        "Post or room hygiene (damage charged at cost)",
        _fine(10),
    ),
    _rule("KPI-10s-guard", "留长发、胡须,仪容不整", "Long hair or beard, untidy", _fine(10)),
    _rule(
        "KPI-10t-guard",
        "擅自留宿他人",
        "Overnight guest in the dormitory",
        _fine(200),
        _fine(0, _S.DISMISSAL),
    ),
)

# Read-only so no caller can change the defaults for everyone; pass ``schedule=`` instead.
PENALTY_SCHEDULE: Mapping[str, PenaltyRule] = MappingProxyType(
    {rule.code: rule for rule in KPI07_PENALTIES + KPI10_PENALTIES}
)


def penalty_for(
    rule_code: str,
    prior_count: int,
    *,
    units: int = 0,
    schedule: Mapping[str, PenaltyRule] = PENALTY_SCHEDULE,
) -> Penalty:
    """The default penalty for an offence against ``rule_code`` by a person who has
    ``prior_count`` earlier offences against the same rule (0 for a first offence).

    The repeat counter is per rule per person; which period it covers (a year, all time) is the
    caller's choice, as the seeds do not say. ``units`` feeds per-unit amounts (KPI-10 e).
    ``schedule`` lets an organisation replace the default amounts.
    """
    if prior_count < 0 or units < 0:
        raise ValueError("prior_count and units cannot be negative")
    try:
        rule = schedule[rule_code]
    except KeyError:
        raise ValueError(f"unknown penalty rule {rule_code!r}") from None
    step = rule.steps[min(prior_count, len(rule.steps) - 1)]
    extra = step.per_unit_fen * units
    return Penalty(
        rule_code=rule.code,
        offence_number=prior_count + 1,
        amount_fen=step.amount_fen + extra,
        points=step.points,
        sanctions=step.sanctions,
        max_amount_fen=None if step.max_amount_fen is None else step.max_amount_fen + extra,
    )


def prior_offences(history: Iterable[tuple[str, str]], person_id: str, rule_code: str) -> int:
    """How many approved penalties in ``history`` (pairs of person id and rule code) the person
    already has for this rule: the ``prior_count`` for :func:`penalty_for`."""
    return sum(1 for person, code in history if person == person_id and code == rule_code)


# KPI-11: role names as used by the app's user model; admins may extend them.
PENALTY_PROPOSER_ROLES = frozenset(
    {"squad_leader", "responsible_person", "captain", "inspector", "brigade_office", "admin"}
)
PENALTY_APPROVER_ROLES = frozenset({"brigade_office", "admin"})


def can_propose_penalty(role: str, proposers: frozenset[str] = PENALTY_PROPOSER_ROLES) -> bool:
    """KPI-11: who may *propose* a penalty in the app (it then waits for approval)."""
    return role in proposers


def can_impose_penalty(role: str, approvers: frozenset[str] = PENALTY_APPROVER_ROLES) -> bool:
    """KPI-11: only the brigade office approves and imposes penalties.

    A squad leader may only propose one: 「班长无权对队员作出任何经济处罚」. A leader who fines a
    guard directly commits KPI-10 h (100 yuan and removal as squad leader).
    """
    return role in approvers


# --- The monthly assessment sheet (KPI-03, KPI-09, KPI-12) and the ledger (KPI-11) --------------

# Which weight table applies to which role of the app.
ASSESSMENT_SCHEMES: Mapping[str, Mapping[str, float]] = MappingProxyType(
    {"courier": COURIER_ASSESSMENT_WEIGHTS, "guard": GUARD_ASSESSMENT_WEIGHTS}
)


def resolve_weights(
    defaults: Mapping[str, float], overrides: Mapping[str, float] | None = None
) -> dict[str, float]:
    """The weights in force: the defaults with an organisation's overrides on top.

    An override for an input the scheme does not have, a negative weight or a set of weights
    that are all zero is refused (``ValueError``): the score would be meaningless.
    """
    weights = dict(defaults)
    for key, value in (overrides or {}).items():
        if key not in weights:
            raise ValueError(f"unknown assessment input {key!r}")
        if value < 0:
            raise ValueError(f"weight for {key!r} is negative")
        weights[key] = float(value)
    if not any(weights.values()):
        raise ValueError("at least one weight must be above 0")
    return weights


def courier_assessment_inputs(
    *,
    delivered: int,
    accurate: int,
    on_time: int,
    promised: int,
    signed: int,
    satisfied: int = 0,
    responses: int = 0,
    market_visits: float | None = None,
) -> dict[str, KpiResult | float | None]:
    """KPI-03's five inputs for one courier and month, from counts.

    ``delivered`` stops, of which ``accurate`` had no discrepancy (KPI-02) and ``signed`` carry
    the customer's signature (DEL-05); ``on_time`` of the ``promised`` ones met their promise;
    ``satisfied`` of ``responses`` customer ratings (KPI-01); ``market_visits`` is the
    assessment team's own mark 0..1, ``None`` when not given.
    """
    return {
        "market_visits": market_visits,
        "customer_feedback": delivery_satisfaction(satisfied, responses),
        "timeliness": on_time_delivery_rate(on_time, promised),
        "accuracy": slip_accuracy(accurate, delivered),
        "handover_signatures": handover_signature_rate(signed, delivered),
    }


def guard_assessment_inputs(
    *,
    shifts: int,
    shifts_with_incident: int,
    inspections: int,
    inspections_passed: int,
    shifts_signed_in: int,
    training_attended: int = 0,
    training_sessions: int = 0,
    client_feedback: float | None = None,
) -> dict[str, KpiResult | float | None]:
    """KPI-12's inputs for one guard and month, from counts.

    ``shifts`` worked (started) in the month, ``shifts_with_incident`` of them had a safety
    incident, theft or fire reported (PAT-14; the appraisal form rewards "no incident on
    shift"); ``inspections_passed`` of ``inspections`` spot checks found the guard present, in
    uniform and with no violation (PAT-08, PAT-22); ``shifts_signed_in`` of ``shifts`` have a
    sign-in (PAT-15); training sessions attended (PAT-18); client feedback 0..1 (PAT-21).
    """
    if shifts_with_incident > shifts or shifts_signed_in > shifts:
        raise ValueError("more shifts with an incident or a sign-in than shifts")
    return {
        "incidents": _rate(shifts - shifts_with_incident, shifts, None),
        "inspections": _rate(inspections_passed, inspections, None),
        "attendance": _rate(shifts_signed_in, shifts, None),
        "training": _rate(training_attended, training_sessions, None),
        "client_feedback": client_feedback,
    }


@dataclass(frozen=True)
class AssessmentSheet:
    """One worker's monthly assessment: the weighted score before and after the KPI-07 point
    deductions, and the approved fines of the month (for payroll)."""

    base_score: float | None  # 0..100, None when no input had data
    point_deductions: int
    score: float | None
    fines_fen: int
    penalties: int


def monthly_assessment(
    inputs: Mapping[str, KpiResult | float | None],
    weights: Mapping[str, float],
    penalties: Iterable[tuple[int, int]] = (),
) -> AssessmentSheet:
    """The assessment sheet: ``penalties`` are the month's *approved* penalties of the person as
    ``(amount_fen, points)`` pairs (proposals and voided ones must not be passed in)."""
    fines = points = count = 0
    for amount_fen, deducted in penalties:
        if amount_fen < 0 or deducted < 0:
            raise ValueError("penalty amounts and points cannot be negative")
        fines += amount_fen
        points += deducted
        count += 1
    base = assessment_score(inputs, weights)
    score = None if base is None else max(0.0, base - points)
    return AssessmentSheet(base, points, score, fines, count)


class LedgerKind(StrEnum):
    """Entries of the append-only penalty ledger (KPI-11). A proposal gets at most one decision
    (approval or rejection); an approval may later be voided by the office (a correction is a
    void plus, if need be, a new proposal, never an edit)."""

    PROPOSAL = "proposal"
    APPROVAL = "approval"
    REJECTION = "rejection"
    VOID = "void"


def ledger_step_allowed(role: str, kind: LedgerKind, referred: LedgerKind | None) -> bool:
    """Who may append what, and to what (KPI-11): anyone who may propose files a proposal
    (referring to nothing); only the office decides on a proposal or voids an approval."""
    if kind is LedgerKind.PROPOSAL:
        return referred is None and can_propose_penalty(
            role, PENALTY_PROPOSER_ROLES | {"supervisor"}
        )
    if not can_impose_penalty(role):
        return False
    if kind in (LedgerKind.APPROVAL, LedgerKind.REJECTION):
        return referred is LedgerKind.PROPOSAL
    return referred is LedgerKind.APPROVAL  # VOID
