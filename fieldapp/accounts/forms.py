"""Forms for logging in and managing people, teams, sites and devices."""

from zoneinfo import available_timezones

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    FloatField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
)
from wtforms.validators import (
    DataRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)

from fieldapp.accounts.service import password_problem
from fieldapp.models.org import SITE_KIND_LABELS, TEAM_KIND_LABELS
from fieldapp.models.user import ROLE_LABELS


class LoginForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(_l("Password"), validators=[DataRequired()])
    remember = BooleanField(_l("Remember this phone for a week"), default=True)
    device_id = HiddenField()


def _check_password(form, field):
    if field.data:
        problem = password_problem(field.data)
        if problem:
            raise ValidationError(problem)


class PasswordForm(FlaskForm):
    password = PasswordField(_l("New password"), validators=[DataRequired(), _check_password])


class UserForm(FlaskForm):
    username = StringField(
        _l("Username"),
        validators=[
            DataRequired(),
            Length(min=2, max=64),
            Regexp(r"^[a-z0-9._-]+$", message=_l("Lower-case letters, digits, . _ - only.")),
        ],
    )
    display_name = StringField(_l("Name"), validators=[DataRequired(), Length(max=80)])
    role = SelectField(_l("Role"))
    team_id = SelectField(_l("Team"), coerce=int)
    phone = StringField(_l("Phone"), validators=[Optional(), Length(max=32)])
    password = PasswordField(_l("Password"), validators=[_check_password])

    def set_choices(self, roles, teams) -> None:
        self.role.choices = [(r.value, str(ROLE_LABELS[r])) for r in roles]
        self.team_id.choices = [(0, _l("No team"))] + [(t.id, t.name) for t in teams]


class TeamForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=80)])
    kind = SelectField(_l("Kind"), choices=[(k.value, v) for k, v in TEAM_KIND_LABELS.items()])
    supervisor_id = SelectField(_l("Supervisor"), coerce=int)


def _timezone_choices():
    preferred = ["Asia/Shanghai", "Asia/Urumqi", "Asia/Hong_Kong", "UTC"]
    return preferred + sorted(available_timezones() - set(preferred))


class SiteForm(FlaskForm):
    kind = SelectField(_l("Kind"), choices=[(k.value, v) for k, v in SITE_KIND_LABELS.items()])
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    address = StringField(_l("Address"), validators=[Optional(), Length(max=255)])
    latitude = FloatField(_l("Latitude"), validators=[Optional(), NumberRange(-90, 90)])
    longitude = FloatField(_l("Longitude"), validators=[Optional(), NumberRange(-180, 180)])
    geofence_radius_m = IntegerField(
        _l("Geofence radius (metres)"), default=150, validators=[NumberRange(10, 5000)]
    )
    timezone = SelectField(_l("Time zone"), default="Asia/Shanghai")
    contact_phone = StringField(_l("Contact phone"), validators=[Optional(), Length(max=32)])
    team_id = SelectField(_l("Team"), coerce=int)

    def set_choices(self, teams) -> None:
        self.timezone.choices = _timezone_choices()
        self.team_id.choices = [(0, _l("No team"))] + [(t.id, t.name) for t in teams]
