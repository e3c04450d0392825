"""Forms of the dashboard: proposing a penalty, deciding on one, the assessment weights."""

from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, FloatField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from fieldapp.rules import kpi


def rule_choices() -> list[tuple[str, str]]:
    chinese = str(get_locale() or "").startswith("zh")
    return [
        (code, f"{code} · {rule.description_zh if chinese else rule.description_en}")
        for code, rule in kpi.PENALTY_SCHEDULE.items()
    ]


class ProposalForm(FlaskForm):
    person_id = SelectField(_l("Person"), coerce=int, validators=[DataRequired()])
    rule_code = SelectField(_l("Rule broken"), validators=[DataRequired()])
    occurred_on = DateField(_l("Day of the offence"), validators=[DataRequired()])
    evidence_url = StringField(
        _l("Evidence: link to the record in the app"),
        validators=[DataRequired(), Length(max=255)],
        description=_l("For example /complaints/… or /patrols/sites/…"),
    )
    units = IntegerField(
        _l("Persons short (KPI-10 e only)"), default=0, validators=[Optional(), NumberRange(0, 99)]
    )
    note = TextAreaField(_l("What happened"), validators=[Optional(), Length(max=2000)])


class DecisionForm(FlaskForm):
    amount_yuan = IntegerField(
        _l("Amount (yuan), within the schedule's range"),
        validators=[Optional(), NumberRange(0, 1_000_000)],
    )
    note = StringField(_l("Note or reason"), validators=[Optional(), Length(max=500)])


class WeightsForm(FlaskForm):
    """Built per scheme: one FloatField per input (see ``weights_form``). Two of them share a
    page under prefixes, so the page's own CSRF field (checked by ``CSRFProtect``) serves both."""

    class Meta:
        csrf = False


INPUT_LABELS = {
    "market_visits": _l("Market visits"),
    "customer_feedback": _l("Customer feedback"),
    "timeliness": _l("Delivery timeliness"),
    "accuracy": _l("Delivery accuracy"),
    "handover_signatures": _l("Handover signatures"),
    "incidents": _l("Shifts without incident"),
    "inspections": _l("Spot checks passed"),
    "attendance": _l("Attendance"),
    "training": _l("Training attended"),
    "client_feedback": _l("Client feedback"),
}


def weights_form(scheme: str, current: dict[str, float], formdata=None):
    class _Form(WeightsForm):
        pass

    for key in kpi.ASSESSMENT_SCHEMES[scheme]:
        setattr(
            _Form,
            key,
            FloatField(
                INPUT_LABELS.get(key, key),
                default=current[key],
                validators=[InputRequired(), NumberRange(0, 100)],
            ),
        )
    return _Form(formdata=formdata, prefix=scheme)
