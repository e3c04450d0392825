"""The supervisor dashboard pages: thin views over ``fieldapp.dashboard.service``."""

import os
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import format_decimal
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from fieldapp.access import roles_required
from fieldapp.dashboard import assessment, drilldown, service
from fieldapp.dashboard import map as map_
from fieldapp.dashboard import registers as registers_
from fieldapp.dashboard.charts import line_chart, nice_scale
from fieldapp.dashboard.forms import (
    INPUT_LABELS,
    DecisionForm,
    ProposalForm,
    rule_choices,
    weights_form,
)
from fieldapp.deliveries import registers as delivery_registers
from fieldapp.models import Role
from fieldapp.rules import kpi
from fieldapp.rules.errors import RuleViolation
from fieldapp.security import CSP

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")
MANAGERS = (Role.SUPERVISOR, Role.ADMIN)


@bp.record_once
def _map_settings(state) -> None:
    """The Today map's tile server (a Leaflet URL template such as
    ``https://{s}.tile.example.cn/{z}/{x}/{y}.png``) and its attribution, from the environment
    unless the app's configuration names them. Empty: no tiles, the points on a plain plot."""
    config = state.app.config
    config.setdefault("MAP_TILE_URL", os.environ.get("FIELDAPP_MAP_TILES", ""))
    config.setdefault("MAP_TILE_ATTRIBUTION", os.environ.get("FIELDAPP_MAP_ATTRIBUTION", ""))


def _csp_with_tiles() -> str | None:
    """The app's CSP with the tile server added to img-src (None: nothing to add)."""
    source = map_.tile_source(current_app.config.get("MAP_TILE_URL", ""))
    if source is None:
        return None
    return CSP.replace("img-src 'self'", f"img-src 'self' {source}", 1)


@bp.app_template_filter("dashboard_time")
def dashboard_time(value: datetime | None, zone: ZoneInfo, fmt: str = "%H:%M") -> str:
    """A UTC instant on the organisation's wall clock."""
    return value.astimezone(zone).strftime(fmt) if value else "—"


@bp.app_template_filter("kpi_percent")
def kpi_percent(value: float | None) -> str:
    """A KPI fraction as a percentage with one decimal, or a dash when nothing was measured."""
    if value is None:
        return "—"
    return format_decimal(value * 100, "0.#") + " %"


@bp.get("/")
@roles_required(*MANAGERS)
def today():
    """Today's board; an htmx poll (HX-Request) gets only the board fragment."""
    board = service.today(current_user)
    template = "dashboard/_today.html" if request.htmx else "dashboard/today.html"
    response = render_template(
        template,
        board=board,
        map_tiles=current_app.config.get("MAP_TILE_URL", ""),
        map_attribution=current_app.config.get("MAP_TILE_ATTRIBUTION", ""),
        map_domains=map_.DOMAIN_LABELS,
    )
    headers = {"Vary": "HX-Request", "Cache-Control": "no-store"}
    csp = _csp_with_tiles()
    if csp:
        headers["Content-Security-Policy"] = csp
    return response, 200, headers


@bp.get("/map.json")
@roles_required(*MANAGERS)
def today_map():
    """Today's located actions of the user's teams and their sites, for the board's map."""
    response = jsonify(map_.as_json(current_user))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/kpi")
@roles_required(*MANAGERS)
def kpis():
    """Each worker's KPIs for a month (``?month=YYYY-MM``, default this month)."""
    first = service.parse_month(request.args.get("month"), service.local_today(current_user))
    if first is None:
        abort(400)
    trend = drilldown.trend(current_user, first)

    def chart(keys, target=None, scale=1.0):
        series = [(k, str(KPI_LABELS[k]), trend.series[k]) for k in keys]
        return line_chart(trend.months, series, target=target, scale=scale)

    rates = [trend.series[k] for k in drilldown.UNIT_KPIS]

    return render_template(
        "dashboard/kpi.html",
        data=service.month_kpis(current_user, first),
        charts=[
            (_l("Deliveries, month over month"), chart(drilldown.DELIVERY_KPIS, 1.0)),
            (_l("Complaints, month over month"), chart(drilldown.COMPLAINT_KPIS, 1.0)),
            (_l("Return-visit satisfaction, month over month"), chart(drilldown.RATING_KPIS)),
            (
                _l("Complaint rate of your units, month over month (CMP-17)"),
                chart(drilldown.UNIT_KPIS, scale=nice_scale(rates)),
            ),
        ],
        month_link=lambda _key, month: url_for("dashboard.kpis", month=f"{month:%Y-%m}"),
    )


KPI_LABELS = {
    "slip_accuracy": _l("Slip accuracy"),
    "on_time": _l("On-time delivery"),
    "handover_signatures": _l("Handover signatures"),
    "patrol_completion": _l("Patrol completion"),
    "patrol_lateness": _l("Rounds late"),
    "complaints_started": _l("Complaints started in time"),
    "complaints_answered": _l("Complaints answered in time"),
    "satisfied": _l("Return-visit satisfaction"),
    "complaint_rate": _l("Complaint rate"),
    "attendance": _l("Attendance"),
    "incident_free": _l("Shifts without incident"),
    "inspections": _l("Spot checks passed"),
}


@bp.get("/kpi/<int:worker_id>/<name>")
@roles_required(*MANAGERS)
def kpi_records(worker_id: int, name: str):
    """The records behind one worker's figure for the month."""
    first = _month()
    records = drilldown.kpi_records(current_user, worker_id, name, first)
    if records is None:
        abort(404)
    return render_template(
        "dashboard/kpi_records.html",
        records=records,
        name=name,
        label=KPI_LABELS[name],
        month=first,
        zone=service.org_zone(current_user.org_id),
    )


# ----- monthly assessment and penalty ledger (KPI-03, KPI-07, KPI-09 to KPI-12) -----------------

LEDGER_MESSAGES = {
    "penalty.not_allowed": _l("Your role may not propose penalties."),
    "penalty.person_out_of_scope": _l("You can only propose penalties for people of your teams."),
    "penalty.unknown_rule": _l("Choose a rule of the penalty schedule."),
    "penalty.bad_units": _l("The number of persons cannot be negative."),
    "penalty.evidence_required": _l(
        "Give the link to the record in the app that shows the offence (it starts with /)."
    ),
    "penalty.not_found": _l("No such ledger entry."),
    "penalty.office_only": _l("Only the office approves, rejects or voids penalties."),
    "penalty.already_decided": _l("This entry was already answered."),
    "penalty.amount_out_of_range": _l("The amount must stay within the schedule's range."),
    "penalty.reason_required": _l("Say why the approval is voided."),
    "assessment.weights_admin_only": _l("Only the office sets the weights."),
    "assessment.bad_weights": _l("At least one weight must be above 0."),
}
FIELD_OF_CODE = {
    "penalty.person_out_of_scope": "person_id",
    "penalty.unknown_rule": "rule_code",
    "penalty.evidence_required": "evidence_url",
    "penalty.bad_units": "units",
}
STATUS_LABELS = {
    "pending": _l("Waiting for the office"),
    "approved": _l("Approved"),
    "rejected": _l("Rejected"),
    "voided": _l("Voided"),
}


def _month():
    first = service.parse_month(request.args.get("month"), service.local_today(current_user))
    if first is None:
        abort(400)
    return first


@bp.app_template_filter("yuan")
def yuan(fen: int | None) -> str:
    return "—" if fen is None else f"{fen // 100}.{fen % 100:02d}"


@bp.get("/assessment")
@roles_required(*MANAGERS)
def assessment_sheet():
    """The month's assessment sheet per courier and guard, with the approved penalties."""
    data = assessment.monthly(current_user, _month())
    return render_template(
        "dashboard/assessment.html", data=data, labels=INPUT_LABELS, schemes=kpi.ASSESSMENT_SCHEMES
    )


def _proposal_form(formdata=None) -> ProposalForm:
    form = ProposalForm(formdata=formdata)
    form.person_id.choices = [
        (p.id, f"{p.display_name} ({p.username})")
        for p in assessment.proposable_people(current_user)
    ]
    form.rule_code.choices = rule_choices()
    return form


def _ledger_page(form: ProposalForm, status: int = 200):
    first = _month()
    person = request.args.get("person", type=int)
    lines = assessment.ledger(current_user, first, person)
    page = render_template(
        "dashboard/penalties.html",
        form=form,
        lines=lines,
        month=first,
        person=person,
        decision=DecisionForm(),
        statuses=STATUS_LABELS,
        schedule=kpi.PENALTY_SCHEDULE,
        is_office=current_user.role == Role.ADMIN,
    )
    return page, status


@bp.get("/penalties")
@roles_required(*MANAGERS)
def penalties():
    """The penalty ledger of the month (by day of offence) and the form to propose one."""
    form = _proposal_form()
    if not form.occurred_on.data:
        form.occurred_on.data = service.local_today(current_user)
    if request.args.get("evidence"):  # "propose a penalty" from a record
        form.evidence_url.data = request.args["evidence"]
    if request.args.get("for", type=int):
        form.person_id.data = request.args.get("for", type=int)
    return _ledger_page(form)


@bp.post("/penalties")
@roles_required(*MANAGERS)
def propose_penalty():
    form = _proposal_form(request.form)
    if form.validate():
        try:
            assessment.propose(
                current_user,
                form.person_id.data,
                form.rule_code.data,
                form.occurred_on.data,
                form.evidence_url.data,
                units=form.units.data or 0,
                note=form.note.data or "",
            )
        except RuleViolation as error:
            field = getattr(form, FIELD_OF_CODE.get(error.code, "note"))
            field.errors = [*field.errors, str(LEDGER_MESSAGES.get(error.code, error))]
        else:
            flash(_l("Penalty proposed; it waits for the office's decision."), "success")
            month = form.occurred_on.data.strftime("%Y-%m")
            return redirect(url_for("dashboard.penalties", month=month))
    return _ledger_page(form, 422)


def _decide(entry_id: int, step):
    form = DecisionForm(request.form)
    if not form.validate():
        abort(400)
    try:
        entry = step(form)
    except RuleViolation as error:
        if error.code == "penalty.not_found":
            abort(404)
        flash(LEDGER_MESSAGES.get(error.code, str(error)), "error")
        return redirect(url_for("dashboard.penalties", month=request.args.get("month")))
    flash(_l("Ledger entry added."), "success")
    return redirect(
        url_for("dashboard.penalties", month=entry.occurred_on.strftime("%Y-%m"))
        + f"#entry-{entry.refers_to_id}"
    )


@bp.post("/penalties/<int:entry_id>/approve")
@roles_required(*MANAGERS)
def approve_penalty(entry_id: int):
    def step(form):
        amount = None if form.amount_yuan.data is None else form.amount_yuan.data * 100
        return assessment.approve(
            current_user, entry_id, amount_fen=amount, note=form.note.data or ""
        )

    return _decide(entry_id, step)


@bp.post("/penalties/<int:entry_id>/reject")
@roles_required(*MANAGERS)
def reject_penalty(entry_id: int):
    return _decide(
        entry_id, lambda form: assessment.reject(current_user, entry_id, form.note.data or "")
    )


@bp.post("/penalties/<int:entry_id>/void")
@roles_required(*MANAGERS)
def void_penalty(entry_id: int):
    return _decide(
        entry_id, lambda form: assessment.void(current_user, entry_id, form.note.data or "")
    )


@bp.get("/penalties/payroll.csv")
@roles_required(Role.ADMIN)
def payroll_csv():
    """The month's deductions per person for the payroll (office only)."""
    first = _month()
    body = assessment.to_csv(
        assessment.PAYROLL_HEADER, assessment.payroll_rows(current_user, first)
    )
    name = f"penalties-payroll-{first:%Y-%m}.csv"
    return Response(
        body,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@bp.route("/weights", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def assessment_weights():
    """The office sets the relative weight of each assessment input (KPI-03 is silent on them)."""
    forms = {
        scheme: weights_form(
            scheme,
            assessment.weights(current_user.org_id, scheme),
            request.form if request.method == "POST" else None,
        )
        for scheme in kpi.ASSESSMENT_SCHEMES
    }
    status = 200
    if request.method == "POST":
        scheme = request.form.get("scheme")
        form = forms.get(scheme)
        if form is None:
            abort(400)
        if form.validate():
            values = {key: form[key].data for key in kpi.ASSESSMENT_SCHEMES[scheme]}
            try:
                assessment.set_weights(current_user, scheme, values)
            except RuleViolation as error:
                form.form_errors.append(str(LEDGER_MESSAGES.get(error.code, error)))
            else:
                flash(_l("Weights saved."), "success")
                return redirect(url_for("dashboard.assessment_weights"))
        status = 422
    return render_template("dashboard/weights.html", forms=forms), status


# ----- registers (REC-*) ----------------------------------------------------------------------

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _filters(default_days: int = 30) -> registers_.Filters:
    """Date range (local, inclusive), site and worker from the query string; 400 when wrong."""
    today_ = service.local_today(current_user)
    try:
        start = date.fromisoformat(
            request.args.get("from") or str(today_ - timedelta(days=default_days - 1))
        )
        end = date.fromisoformat(request.args.get("to") or str(today_))
    except ValueError:
        abort(400)
    if end < start or (end - start).days > registers_.MAX_DAYS:
        abort(400)
    return registers_.Filters(
        start,
        end,
        request.args.get("site", type=int) or None,
        request.args.get("worker", type=int) or None,
    )


def _query(filters: registers_.Filters) -> dict:
    return {
        "from": filters.start.isoformat(),
        "to": filters.end.isoformat(),
        "site": filters.site_id or "",
        "worker": filters.worker_id or "",
    }


@bp.get("/registers")
@roles_required(*MANAGERS)
def registers():
    """Every register the records make, for one date range, site and worker."""
    filters = _filters()
    sites, people = registers_.choices(current_user)
    return render_template(
        "dashboard/registers.html",
        filters=filters,
        query=_query(filters),
        registers=registers_.REGISTERS.values(),
        delivery_registers=delivery_registers.REGISTERS.values(),
        sites=sites,
        people=people,
    )


def _register(kind: str):
    register = registers_.REGISTERS.get(kind)
    if register is None:
        abort(404)
    filters = _filters()
    return register, filters, register.rows(current_user, filters)


@bp.get("/registers/<kind>.<any(csv, xlsx):fmt>")
@roles_required(*MANAGERS)
def register_file(kind: str, fmt: str):
    """A register as CSV (codes, for machines) or XLSX (translated headings and values)."""
    register, filters, rows = _register(kind)
    name = f"{register.key}-{filters.start}-{filters.end}.{fmt}"
    if fmt == "csv":
        body, mimetype = assessment.to_csv(register.header, rows), "text/csv"
    else:
        body, mimetype = registers_.COLUMNS.to_xlsx(register.title, register.header, rows), XLSX
    return Response(
        body, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@bp.get("/registers/<kind>/print")
@roles_required(*MANAGERS)
def register_print(kind: str):
    """A register as a page to print on A4 (landscape), with the signatures it needs."""
    register, filters, rows = _register(kind)
    sites, people = registers_.choices(current_user)
    return render_template(
        "dashboard/register_print.html",
        register=register,
        filters=filters,
        query=_query(filters),
        site=next((s for s in sites if s.id == filters.site_id), None),
        worker=next((p for p in people if p.id == filters.worker_id), None),
        sites=sites,
        people=people,
        headings=registers_.COLUMNS.headings(register.header),
        rows=registers_.COLUMNS.display_rows(register.header, rows),
    )
