"""Deliveries pages: the courier's day (offline through the day pack) and the dispatcher's side."""

from datetime import date, datetime, timedelta

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

import fieldapp.deliveries.demo  # noqa: F401  (adds today's demo route to seed-demo)
import fieldapp.deliveries.records  # noqa: F401  (registers record types, kinds, clock check)
from fieldapp.access import roles_required
from fieldapp.deliveries import registers as registers_
from fieldapp.deliveries import service
from fieldapp.deliveries.forms import (
    CorrectionForm,
    ImportForm,
    RatingForm,
    ReportForm,
    RouteForm,
    StopForm,
    parse_item_lines,
)
from fieldapp.deliveries.models import (
    REFUSAL_REASONS,
    VEHICLE_CHECK_LABELS,
    Route,
    StopState,
)
from fieldapp.extensions import db
from fieldapp.models import Role, Site, User
from fieldapp.rules.deliveries import DEFAULT_VEHICLE_CHECK_ITEMS, parse_yuan_to_fen
from fieldapp.rules.errors import RuleViolation
from fieldapp.sync.messages import rule_message

bp = Blueprint("deliveries", __name__, url_prefix="/deliveries")
MANAGERS = (Role.SUPERVISOR, Role.ADMIN)


def _route_or_404(route_id: int) -> Route:
    route = service.visible_route(current_user, route_id)
    if route is None:
        abort(404)
    return route


def _stop_or_404(stop_id: str):
    stop = service.visible_stop(current_user, stop_id)
    if stop is None:
        abort(404)
    return stop


def _flash_violation(violation: RuleViolation) -> None:
    flash(rule_message(violation.code, violation.message), "error")


def _yuan(fen: int | None) -> str:
    if fen is None:
        return ""
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}{fen // 100}.{fen % 100:02d}"


@bp.app_template_filter("yuan")
def yuan_filter(fen):
    return _yuan(fen)


# ----- the courier ----------------------------------------------------------------------------


@bp.get("/today")
@roles_required(Role.COURIER)
def today():
    """Today's route: stops in order, what is due soonest, the vehicle check and end of day."""
    day = service.today_for(current_user.org_id)
    routes = service.courier_routes(current_user, day)
    checks = {r.id: service.latest_vehicle_check(r) for r in routes}
    return render_template(
        "deliveries/today.html",
        routes=routes,
        checks=checks,
        day=day,
        open_states=("pending", "arrived"),
    )


@bp.get("/routes/<int:route_id>/vehicle-check")
@roles_required(Role.COURIER)
def vehicle_check(route_id: int):
    """The pre-trip checklist (VEH-01): faults, condition, documents."""
    route = _route_or_404(route_id)
    return render_template(
        "deliveries/vehicle_check.html",
        route=route,
        items=[(name, VEHICLE_CHECK_LABELS[name]) for name in DEFAULT_VEHICLE_CHECK_ITEMS],
        last=service.latest_vehicle_check(route),
    )


@bp.get("/stops/<stop_id>")
@roles_required(Role.COURIER, *MANAGERS)
def stop(stop_id: str):
    """One stop: the slip, arrival, goods check, cash, signature, or the refusal."""
    stop = _stop_or_404(stop_id)
    return _render_stop(stop)


def _render_stop(stop, correction_form: CorrectionForm | None = None, status: int = 200):
    route = stop.route
    earlier_open = [
        s
        for s in route.stops
        if s.sequence < stop.sequence
        and s.state
        not in (StopState.DELIVERED, StopState.REFUSED, StopState.RETURNED, StopState.SKIPPED)
    ]
    proof = service.effective_proofs([stop.id]).get(stop.id)
    history = service.proof_history(stop)
    if proof is not None and correction_form is None and current_user.role in MANAGERS:
        correction_form = CorrectionForm(proof_id=proof.id)
    authors = {
        u.id: u
        for u in db.session.scalars(select(User).where(User.id.in_({p.user_id for p in history})))
    }
    return render_template(
        "deliveries/stop.html",
        stop=stop,
        route=route,
        earlier_open=earlier_open,
        proof=proof,
        history=history,
        authors=authors,
        correction_form=correction_form,
        reasons=REFUSAL_REASONS,
        has_special=any(i.special_shape for i in stop.items),
    ), status


@bp.post("/stops/<stop_id>/correct")
@roles_required(*MANAGERS)
def correct(stop_id: str):
    """The office corrects the delivery record: a new record naming the old one, never an edit."""
    stop = _stop_or_404(stop_id)
    form = CorrectionForm()
    if not form.validate_on_submit():
        return _render_stop(stop, form, 422)
    try:
        service.correct_proof(
            current_user,
            stop,
            form.proof_id.data or "",
            form.reason.data or "",
            cash_received=form.cash_received.data or "",
            damage_quantity=form.damage_quantity.data,
        )
    except RuleViolation as violation:
        db.session.rollback()
        _flash_violation(violation)
        return _render_stop(stop, form, 422)
    db.session.commit()
    flash(_("Correction recorded. The courier is told."), "success")
    return redirect(url_for("deliveries.stop", stop_id=stop.id))


@bp.get("/stops/<stop_id>/receipt")
@roles_required(Role.COURIER, *MANAGERS)
def receipt(stop_id: str):
    """The customer's e-receipt (DEL-05): the slip, the amount paid, and a QR code to it."""
    import segno

    stop = _stop_or_404(stop_id)
    proof = service.effective_proofs([stop.id]).get(stop.id)
    rate_url = url_for("deliveries.rate", token=service.rating_token(stop), _external=True)
    qr = segno.make(rate_url, error="m", micro=False)
    return render_template(
        "deliveries/receipt.html",
        stop=stop,
        proof=proof,
        qr_svg=qr.svg_inline(scale=4),
        rate_url=rate_url,
    )


@bp.route("/stops/<stop_id>/report", methods=["GET", "POST"])
@roles_required(Role.COURIER, *MANAGERS)
def report(stop_id: str):
    """From the e-receipt: the customer reports a problem, which opens a complaint (DEL-15)."""
    stop = _stop_or_404(stop_id)
    form = ReportForm()
    if form.validate_on_submit():
        try:
            complaint = service.report_problem(
                current_user,
                stop,
                form.topic.data,
                form.text.data,
                form.name.data,
                form.phone.data or "",
            )
        except RuleViolation as violation:
            db.session.rollback()
            _flash_violation(violation)
        else:
            db.session.commit()
            flash(
                _(
                    "Thank you. Your report is registered as %(slip)s; we will follow it up.",
                    slip=complaint.slip_number,
                ),
                "success",
            )
            return redirect(url_for("deliveries.receipt", stop_id=stop.id))
    status = 422 if form.errors else 200
    return render_template("deliveries/report.html", stop=stop, form=form), status


@bp.get("/end-of-day")
@roles_required(Role.COURIER)
def end_of_day():
    """Cash handover to the bookkeeper, goods brought back, vehicle parked: the day closes."""
    day = service.today_for(current_user.org_id)
    routes = service.courier_routes(current_user, day)
    summaries = []
    for route in routes:
        summaries.append(
            {
                "route": route,
                "collected": service.cash_collected_fen(route),
                "open": [s for s in route.stops if s.state in ("pending", "arrived")],
                "returns": service.expected_returns(route),
                "handover": service.latest_handover(route),
                "close": service.day_close_of(route),
            }
        )
    return render_template("deliveries/end_of_day.html", summaries=summaries, day=day)


# ----- the dispatcher -----------------------------------------------------------------------


def _day_arg() -> date:
    try:
        return date.fromisoformat(request.args.get("date", ""))
    except ValueError:
        return service.today_for(current_user.org_id)


@bp.get("/routes")
@roles_required(*MANAGERS)
def routes():
    """Every route of the day in the teams I dispatch, with stop states and open refusals."""
    day = _day_arg()
    routes = service.managed_routes(current_user, day)
    return render_template(
        "deliveries/routes.html",
        routes=routes,
        day=day,
        previous=day - timedelta(days=1),
        following=day + timedelta(days=1),
    )


@bp.route("/routes/new", methods=["GET", "POST"])
@roles_required(*MANAGERS)
def new_route():
    """Create a route by hand: date, team, courier, vehicle."""
    form = RouteForm()
    form.set_choices(service.delivery_teams(current_user), service.couriers_for(current_user))
    if request.method == "GET":
        form.date.data = service.today_for(current_user.org_id)
    if form.validate_on_submit():
        try:
            route = service.create_route(
                current_user,
                team_id=form.team_id.data,
                day=form.date.data,
                name=form.name.data,
                kind=form.kind.data,
                courier_id=form.courier_id.data or None,
                vehicle_plate=form.vehicle_plate.data or "",
                two_person_crew=form.two_person_crew.data,
                parking=form.parking(),
            )
        except RuleViolation as violation:
            db.session.rollback()
            _flash_violation(violation)
        else:
            db.session.commit()
            flash(_("Route created. Add its stops."), "success")
            return redirect(url_for("deliveries.route", route_id=route.id))
    return render_template("deliveries/form.html", form=form, title=_("New route"))


def _stop_form(route: Route) -> StopForm:
    form = StopForm(prefix="stop")
    sites = db.session.scalars(
        db.select(Site)
        .where(Site.org_id == current_user.org_id, Site.kind == "shop")
        .order_by(Site.name)
    ).all()
    form.set_choices(sites)
    return form


@bp.get("/routes/<int:route_id>")
@roles_required(*MANAGERS)
def route(route_id: int):
    """A route live: each stop's state, refusals to resolve, the day's checks and cash."""
    route = _route_or_404(route_id)
    return _render_route(route, _stop_form(route))


def _render_route(route: Route, stop_form: StopForm, status: int = 200):
    refusals = service.refusals_of(route)
    return render_template(
        "deliveries/route.html",
        route=route,
        stop_form=stop_form,
        couriers=service.couriers_for(current_user),
        check=service.latest_vehicle_check(route),
        handover=service.latest_handover(route),
        close=service.day_close_of(route),
        collected=service.cash_collected_fen(route),
        refusals=refusals,
        open_refusals={r.stop_id for r in refusals},
        proofs=service.effective_proofs([s.id for s in route.stops]),
    ), status


@bp.post("/routes/<int:route_id>/assign")
@roles_required(*MANAGERS)
def assign(route_id: int):
    """Give the route to a courier and a vehicle (their phone learns it on its next sync)."""
    route = _route_or_404(route_id)
    try:
        service.assign_route(
            current_user,
            route,
            request.form.get("courier_id", type=int) or None,
            request.form.get("vehicle_plate", ""),
        )
    except RuleViolation as violation:
        db.session.rollback()
        _flash_violation(violation)
    else:
        db.session.commit()
        flash(_("Saved."), "success")
    return redirect(url_for("deliveries.route", route_id=route.id))


def _aware(value: datetime | None):
    if value is None:
        return None
    return value.replace(tzinfo=service.org_tz(current_user.org_id))


@bp.post("/routes/<int:route_id>/stops")
@roles_required(*MANAGERS)
def add_stop(route_id: int):
    """Add a stop with its delivery slip to the end of the route."""
    route = _route_or_404(route_id)
    form = _stop_form(route)
    if not form.validate_on_submit():
        return _render_route(route, form, 422)
    site = db.session.get(Site, form.site_id.data) if form.site_id.data else None
    spec = service.StopSpec(
        customer_name=form.customer_name.data or (site.name if site else ""),
        customer_code=form.customer_code.data,
        address=form.address.data or (site.address if site else ""),
        ticket_no=form.ticket_no.data,
        tote_boxes=form.tote_boxes.data or "",
        amount_due_fen=parse_yuan_to_fen(form.amount_due.data or "0"),
        settlement=form.settlement.data,
        phone_confirmed_at=_aware(form.phone_confirmed_at.data),
        window_start=_aware(form.window_start.data),
        window_end=_aware(form.window_end.data),
        site_id=site.id if site else None,
        items=parse_item_lines(form.items.data),
    )
    if not spec.customer_name:
        form.customer_name.errors.append(_("Name the customer or choose a shop."))
        return _render_route(route, form, 422)
    try:
        service.add_stop(current_user, route, spec)
    except RuleViolation as violation:
        db.session.rollback()
        _flash_violation(violation)
    else:
        db.session.commit()
        flash(_("Stop added."), "success")
    return redirect(url_for("deliveries.route", route_id=route.id))


@bp.post("/stops/<stop_id>/move")
@roles_required(*MANAGERS)
def move_stop(stop_id: str):
    """Move a stop one place earlier or later in the route."""
    stop = _stop_or_404(stop_id)
    direction = -1 if request.form.get("direction") == "up" else 1
    service.move_stop(current_user, stop, direction)
    db.session.commit()
    return redirect(url_for("deliveries.route", route_id=stop.route_id))


@bp.post("/stops/<stop_id>/resolve")
@roles_required(*MANAGERS)
def resolve(stop_id: str):
    """Resolve a refusal: deliver again, or take the goods back to the depot."""
    stop = _stop_or_404(stop_id)
    try:
        service.resolve_refusal(current_user, stop, request.form.get("resolution", ""))
    except RuleViolation as violation:
        db.session.rollback()
        _flash_violation(violation)
    else:
        db.session.commit()
        flash(_("Refusal resolved."), "success")
    return redirect(url_for("deliveries.route", route_id=stop.route_id))


@bp.route("/import", methods=["GET", "POST"])
@roles_required(*MANAGERS)
def import_slips():
    """Import a CSV of delivery slips: every line checked, nothing stored if any is wrong."""
    form = ImportForm()
    form.team_id.choices = [(t.id, t.name) for t in service.delivery_teams(current_user)]
    result = None
    status = 200
    if form.validate_on_submit():
        upload = form.file.data
        raw = upload.read() if upload else b""
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = None
            form.file.errors.append(_("Save the CSV as UTF-8 and upload it again."))
            status = 422
        if text is not None:
            try:
                result = service.import_slips(current_user, form.team_id.data, text)
            except RuleViolation as violation:
                db.session.rollback()
                _flash_violation(violation)
                result = None
            else:
                if result.errors:
                    db.session.rollback()
                    status = 422
                else:
                    db.session.commit()
                    flash(
                        _(
                            "Imported %(routes)d routes with %(stops)d stops.",
                            routes=result.routes,
                            stops=result.stops,
                        ),
                        "success",
                    )
                    return redirect(url_for("deliveries.routes"))
    return render_template(
        "deliveries/import.html", form=form, result=result, columns=service.CSV_COLUMNS
    ), status


@bp.get("/registers")
@roles_required(*MANAGERS)
def registers():
    """The four registers: pick a date range (and a courier), then a file or the print page."""
    today_ = service.today_for(current_user.org_id)
    return render_template(
        "deliveries/registers.html",
        registers=[
            (r, *registers_.default_range(r, today_)) for r in registers_.REGISTERS.values()
        ],
        couriers=service.couriers_for(current_user),
    )


def _register_query(kind: str):
    """The register, its date range and courier from the query string; 404/400 when wrong."""
    register = registers_.REGISTERS.get(kind)
    if register is None:
        abort(404)
    try:
        start = date.fromisoformat(request.args.get("from", ""))
        end = date.fromisoformat(request.args.get("to", ""))
    except ValueError:
        abort(400)
    if end < start or (end - start).days > 366:
        abort(400)
    courier_id = request.args.get("courier", type=int) or None
    rows = register.rows(current_user, start, end, courier_id)
    return register, start, end, courier_id, rows


@bp.get("/registers/<kind>.<any(csv, xlsx):fmt>")
@roles_required(*MANAGERS)
def register_file(kind: str, fmt: str):
    """A register as CSV (codes, for machines) or XLSX (translated, numbers as numbers)."""
    register, start, end, _courier, rows = _register_query(kind)
    name = f"{register.key}-{start}-{end}.{fmt}"
    if fmt == "csv":
        body, mimetype = service.to_csv(register.header, rows), "text/csv"
    else:
        body = registers_.COLUMNS.to_xlsx(register.title, register.header, rows)
        mimetype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return Response(
        body, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@bp.get("/registers/<kind>/print")
@roles_required(*MANAGERS)
def register_print(kind: str):
    """A register as a page to print on A4 (landscape), with the signatures it needs."""
    register, start, end, courier_id, rows = _register_query(kind)
    courier = next((c for c in service.couriers_for(current_user) if c.id == courier_id), None)
    return render_template(
        "deliveries/register_print.html",
        register=register,
        start=start,
        end=end,
        courier=courier,
        couriers=service.couriers_for(current_user),
        headings=registers_.COLUMNS.headings(register.header),
        rows=registers_.COLUMNS.display_rows(register.header, rows),
        numeric=[
            c in registers_.INTEGER_COLUMNS or c in registers_.MONEY_COLUMNS
            for c in register.header
        ],
        query={"from": start.isoformat(), "to": end.isoformat(), "courier": courier_id or ""},
    )


# ----- the daily delivery report (DEL-09) -----------------------------------------------------


def _report_day() -> date:
    text = request.args.get("date", "")
    try:
        return date.fromisoformat(text)
    except ValueError:
        if text:
            flash(_("“%(text)s” is not a date (YYYY-MM-DD): showing today.", text=text), "error")
        return service.today_for(current_user.org_id)


@bp.get("/daily-report")
@roles_required(*MANAGERS)
def daily_report():
    """Per courier: stops, delivered, refused, cash collected vs handed in (DEL-09)."""
    day = _report_day()
    return render_template(
        "deliveries/daily_report.html",
        day=day,
        rows=service.daily_report(current_user, day),
        previous=day - timedelta(days=1),
        following=day + timedelta(days=1),
    )


@bp.get("/daily-report.csv")
@roles_required(*MANAGERS)
def daily_report_csv():
    day = _report_day()
    rows = [row.csv() for row in service.daily_report(current_user, day)]
    return Response(
        service.to_csv(service.DAILY_REPORT_HEADER, rows),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="daily-report-{day}.csv"'},
    )


# ----- the customer's rating: public, reached by the e-receipt's QR code (DEL-15) ----------


@bp.route("/rate/<token>", methods=["GET", "POST"])
def rate(token: str):
    """No account needed: the signed token in the QR code names the stop."""
    stop = service.stop_from_token(token)
    if stop is None:
        abort(404)
    proof = service.effective_proofs([stop.id]).get(stop.id)
    rating = service.rating_of(stop)
    form = RatingForm()
    status = 200
    if rating is None and proof is not None and form.validate_on_submit():
        try:
            rating = service.rate_delivery(stop, form.stars.data, form.comment.data or "")
        except RuleViolation as violation:
            db.session.rollback()
            _flash_violation(violation)
            status = 422
        else:
            db.session.commit()
            flash(_("Thank you for your rating."), "success")
            return redirect(url_for("deliveries.rate", token=token))
    elif form.errors:
        status = 422
    return render_template(
        "deliveries/rate.html", stop=stop, proof=proof, rating=rating, form=form
    ), status
