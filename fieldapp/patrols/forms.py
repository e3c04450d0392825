"""The supervisor's set-up forms: posts, checkpoints, the patrol plan, the roster, licences."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    DecimalField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional, Regexp

from fieldapp.patrols.models import (
    EQUIPMENT_CONDITION_LABELS,
    EQUIPMENT_KIND_LABELS,
    POST_KIND_LABELS,
)


class PostForm(FlaskForm):
    name = StringField(_l("Post name"), validators=[DataRequired(), Length(max=80)])
    kind = SelectField(
        _l("Kind of post"), choices=[(k.value, label) for k, label in POST_KIND_LABELS.items()]
    )


class CheckpointForm(FlaskForm):
    code = StringField(
        _l("Short code"),
        validators=[
            DataRequired(),
            Length(max=32),
            Regexp(r"^[A-Za-z0-9_-]+$", message=_l("Letters, digits, _ and - only.")),
        ],
    )
    name = StringField(_l("Where it is"), validators=[DataRequired(), Length(max=80)])
    position = IntegerField(_l("Order on the route"), default=1, validators=[Optional()])


class PlanForm(FlaskForm):
    checkpoints = SelectMultipleField(_l("Checkpoints of a round"))
    ordered = BooleanField(_l("Walk them in this order"))
    every_minutes = IntegerField(
        _l("A round every N minutes"), validators=[Optional(), NumberRange(min=10, max=1440)]
    )
    rounds_per_shift = IntegerField(
        _l("Or: rounds per shift"), validators=[Optional(), NumberRange(min=1, max=48)]
    )
    window_minutes = IntegerField(
        _l("Minutes allowed per round"),
        default=60,
        validators=[DataRequired(), NumberRange(min=5, max=720)],
    )


class ShiftForm(FlaskForm):
    guard_id = SelectField(_l("Guard"), coerce=int)
    post_id = SelectField(_l("Post"), coerce=int)
    day = DateField(_l("Day"), validators=[DataRequired()])
    start = TimeField(_l("From"), validators=[DataRequired()])
    end = TimeField(_l("To (next day if earlier)"), validators=[DataRequired()])


class LicenceForm(FlaskForm):
    licence_number = StringField(_l("Security licence number"), validators=[Length(max=40)])
    licence_expires = DateField(_l("Valid until"), validators=[Optional()])
    rapid_response = BooleanField(_l("Member of the rapid-response team"))


class CheckpointEditForm(FlaskForm):
    """The code is printed on the sheet and named by the plan, so it is not edited here."""

    name = StringField(_l("Where it is"), validators=[DataRequired(), Length(max=80)])
    position = IntegerField(_l("Order on the route"), default=1, validators=[Optional()])
    active = BooleanField(_l("In use (untick to retire the checkpoint)"), default=True)


class EquipmentForm(FlaskForm):
    kind = SelectField(
        _l("Item"), choices=[(k.value, label) for k, label in EQUIPMENT_KIND_LABELS.items()]
    )
    label = StringField(_l("Description or serial number"), validators=[Optional(), Length(max=80)])
    post_id = SelectField(_l("Post"), coerce=int)
    guard_id = SelectField(_l("Issued to (personal kit)"), coerce=int)
    value_yuan = DecimalField(
        _l("Value in yuan (charged if lost or damaged)"),
        places=2,
        validators=[Optional(), NumberRange(min=0, max=1_000_000)],
    )


class EquipmentCheckForm(FlaskForm):
    check_kind = SelectField(
        _l("What"),
        choices=[
            ("inspection", _l("Inspection")),
            ("maintenance", _l("Maintenance")),
            ("returned", _l("Returned")),
        ],
    )
    condition = SelectField(_l("Condition found"), choices=list(EQUIPMENT_CONDITION_LABELS.items()))
    notes = TextAreaField(_l("Notes"), validators=[Optional(), Length(max=2000)])
