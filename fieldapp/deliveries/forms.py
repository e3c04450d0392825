"""The dispatcher's forms: a route, a stop with its slip, a CSV of slips."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    DecimalField,
    HiddenField,
    IntegerField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from fieldapp.deliveries.models import ROUTE_KIND_LABELS, SETTLEMENT_LABELS
from fieldapp.rules.deliveries import parse_yuan_to_fen


class RouteForm(FlaskForm):
    date = DateField(_l("Date"), validators=[DataRequired()])
    name = StringField(_l("Route name"), validators=[DataRequired(), Length(max=80)])
    team_id = SelectField(_l("Team"), coerce=int)
    kind = SelectField(_l("Kind"), choices=list(ROUTE_KIND_LABELS.items()))
    courier_id = SelectField(_l("Courier"), coerce=int)
    vehicle_plate = StringField(_l("Vehicle plate"), validators=[Optional(), Length(max=16)])
    two_person_crew = BooleanField(_l("Crew of two (driver and deliverer)"))
    parking_name = StringField(
        _l("Designated parking place (VEH-02)"), validators=[Optional(), Length(max=80)]
    )
    parking_latitude = DecimalField(
        _l("Parking place latitude"),
        places=None,
        validators=[
            Optional(),
            NumberRange(min=-90, max=90, message=_l("A latitude is between -90 and 90.")),
        ],
        render_kw={"inputmode": "decimal"},
    )
    parking_longitude = DecimalField(
        _l("Parking place longitude"),
        places=None,
        validators=[
            Optional(),
            NumberRange(min=-180, max=180, message=_l("A longitude is between -180 and 180.")),
        ],
        render_kw={"inputmode": "decimal"},
    )
    parking_radius_m = IntegerField(
        _l("Parking place radius (m)"),
        default=150,
        validators=[
            Optional(),
            NumberRange(min=20, max=2000, message=_l("Between 20 and 2000 metres.")),
        ],
        render_kw={"inputmode": "numeric"},
    )

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        latitude, longitude = self.parking_latitude, self.parking_longitude
        if not (latitude.errors or longitude.errors) and (latitude.data is None) != (
            longitude.data is None
        ):
            missing = longitude if longitude.data is None else latitude
            missing.errors = [*missing.errors, _l("Give both latitude and longitude, or neither.")]
            ok = False
        return ok

    def parking(self) -> tuple[str, float, float, int] | None:
        if self.parking_latitude.data is None or self.parking_longitude.data is None:
            return None
        return (
            (self.parking_name.data or "").strip(),
            float(self.parking_latitude.data),
            float(self.parking_longitude.data),
            self.parking_radius_m.data or 150,
        )

    def set_choices(self, teams, couriers) -> None:
        self.team_id.choices = [(t.id, t.name) for t in teams]
        self.courier_id.choices = [(0, _l("Not assigned yet"))] + [
            (c.id, c.display_name) for c in couriers
        ]


def _amount(form, field):
    try:
        parse_yuan_to_fen(field.data or "0")
    except ValueError:
        raise ValidationError(_l("Enter an amount in yuan, e.g. 1280.50")) from None


def _items(form, field):
    try:
        parse_item_lines(field.data or "")
    except ValueError as error:
        raise ValidationError(str(error)) from None


def parse_item_lines(text: str) -> list[tuple[str, str, int, bool]]:
    """``code, variety, quantity[, special]`` per line."""
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.replace("，", ",").split(",")]
        if len(parts) < 3 or not parts[0] or not parts[1] or not parts[2].isdigit():
            raise ValueError(
                str(_l("Line %(n)d: write code, variety, quantity[, special]", n=number))
            )
        special = len(parts) > 3 and parts[3].lower() in ("1", "yes", "y", "special", "是", "异型")
        items.append((parts[0], parts[1], int(parts[2]), special))
    if not items:
        raise ValueError(str(_l("A slip needs at least one item.")))
    return items


class StopForm(FlaskForm):
    site_id = SelectField(_l("Shop"), coerce=int)
    customer_name = StringField(_l("Customer"), validators=[Optional(), Length(max=120)])
    customer_code = StringField(_l("Customer code"), validators=[DataRequired(), Length(max=32)])
    address = StringField(_l("Address"), validators=[Optional(), Length(max=255)])
    ticket_no = StringField(_l("Ticket number"), validators=[DataRequired(), Length(max=32)])
    tote_boxes = StringField(_l("Tote-box numbers"), validators=[Optional(), Length(max=120)])
    amount_due = StringField(_l("Amount due (yuan)"), default="0", validators=[_amount])
    settlement = SelectField(_l("Settlement"), choices=list(SETTLEMENT_LABELS.items()))
    phone_confirmed_at = DateTimeLocalField(
        _l("Phone confirmation (flexible routes)"), validators=[Optional()]
    )
    window_start = DateTimeLocalField(_l("Promised from (fixed routes)"), validators=[Optional()])
    window_end = DateTimeLocalField(_l("Promised by (fixed routes)"), validators=[Optional()])
    items = TextAreaField(
        _l("Items: one per line, code, variety, quantity[, special]"), validators=[_items]
    )

    def set_choices(self, sites) -> None:
        self.site_id.choices = [(0, _l("Not a registered shop"))] + [(s.id, s.name) for s in sites]


class ImportForm(FlaskForm):
    team_id = SelectField(_l("Team"), coerce=int)
    file = FileField(_l("CSV file of delivery slips"))


# What the customer reports from the e-receipt, and how the complaint is classed (DEL-15).
REPORT_TOPICS = {
    "conduct": _l("The courier's conduct"),
    "goods": _l("The goods (missing, wrong or damaged)"),
    "late": _l("The delivery was late"),
    "other": _l("Something else"),
}


class ReportForm(FlaskForm):
    """The customer's own words about a delivery; it becomes a complaint (CMP-01)."""

    topic = SelectField(_l("What is it about?"), choices=list(REPORT_TOPICS.items()))
    text = TextAreaField(_l("What happened?"), validators=[DataRequired(), Length(max=4000)])
    name = StringField(_l("Your name"), validators=[DataRequired(), Length(max=80)])
    phone = StringField(
        _l("Your phone (so we can call you back)"), validators=[Optional(), Length(max=32)]
    )


class CorrectionForm(FlaskForm):
    """The office corrects a delivery record: a new record naming the old one, with the why."""

    proof_id = HiddenField()
    cash_received = StringField(
        _l("Cash actually received (yuan)"),
        validators=[Optional(), Length(max=20), _amount],
        render_kw={"inputmode": "decimal", "autocomplete": "off"},
    )
    damage_quantity = IntegerField(
        _l("Damaged quantity (0 if intact)"),
        validators=[
            Optional(),
            NumberRange(min=0, max=100000, message=_l("Enter a whole number, 0 or more.")),
        ],
        render_kw={"inputmode": "numeric"},
    )
    reason = TextAreaField(
        _l("Why is it corrected?"),
        validators=[
            DataRequired(message=_l("Say why you correct the record.")),
            Length(max=2000),
        ],
    )


STARS = [(n, str(n)) for n in range(5, 0, -1)]


def _star(value) -> int:
    """What the form sent, as a number of stars; anything else becomes 0 (refused below)."""
    return int(value) if str(value).isdigit() else 0


class RatingForm(FlaskForm):
    """The customer rates the delivery from the e-receipt (DEL-15)."""

    stars = RadioField(
        _l("How was the delivery?"),
        coerce=_star,
        choices=STARS,
        validators=[InputRequired(message=_l("Choose 1 to 5 stars."))],
        validate_choice=False,
    )
    comment = TextAreaField(
        _l("Anything to tell us? (optional)"), validators=[Optional(), Length(max=2000)]
    )

    def validate_stars(self, field) -> None:
        if field.data not in dict(STARS):
            raise ValidationError(_l("Choose 1 to 5 stars."))
