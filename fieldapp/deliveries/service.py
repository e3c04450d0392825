"""Delivery use cases: the courier's facts, the stop's status, the dispatcher's routes.

The same functions serve the phone's synced records (``fieldapp.deliveries.records``) and the
dispatcher's pages. They validate with the pure rules in ``fieldapp.rules.deliveries``, raise
``RuleViolation`` to refuse, never commit, and publish what phones must learn in the same
transaction.
"""

import csv
import io
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import selectinload

from fieldapp import push
from fieldapp.access import supervised_team_ids
from fieldapp.deliveries.models import (
    DONE_STATES,
    OPEN_STATES,
    CashHandover,
    DayClose,
    DeliveryRating,
    ProofOfDelivery,
    Refusal,
    Route,
    Settlement,
    SlipItem,
    Stop,
    StopArrival,
    StopState,
    VehicleCheck,
)
from fieldapp.extensions import db
from fieldapp.models import Organisation, Role, Site, Team, User, new_uuid, utcnow
from fieldapp.rules import deliveries as rules
from fieldapp.rules.errors import RuleViolation
from fieldapp.rules.geo import geofence_check
from fieldapp.sync.changes import publish
from fieldapp.sync.engine import batch_cache, forget_in_batch, per_batch
from fieldapp.sync.registry import Current

MANAGERS = (Role.SUPERVISOR, Role.ADMIN)


# ----- time and scope ---------------------------------------------------------------------


def org_tz(org_id: int) -> ZoneInfo:
    name = db.session.scalar(db.select(Organisation.timezone).where(Organisation.id == org_id))
    return ZoneInfo(name or "Asia/Shanghai")


def today_for(org_id: int, now: datetime | None = None) -> date:
    """The organisation's calendar date now (couriers work in local days, not UTC days)."""
    return (now or utcnow()).astimezone(org_tz(org_id)).date()


def local_datetime(org_id: int, day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=org_tz(org_id))


def courier_routes(user: User, day: date) -> list[Route]:
    return list(
        db.session.scalars(
            db.select(Route)
            .where(Route.org_id == user.org_id, Route.courier_id == user.id, Route.date == day)
            .order_by(Route.id)
        )
    )


def visible_route(user: User, route_id: int) -> Route | None:
    """A route the user may see: a courier their own, a supervisor their teams', an admin all."""
    route = db.session.get(Route, route_id)
    if route is None or route.org_id != user.org_id:
        return None
    if user.role in MANAGERS:
        return route if route.team_id in supervised_team_ids(user) else None
    return route if route.courier_id == user.id else None


def visible_stop(user: User, stop_id: str) -> Stop | None:
    stop = db.session.get(Stop, stop_id)
    if stop is None or stop.org_id != user.org_id:
        return None
    return stop if visible_route(user, stop.route_id) else None


def _own_stop(user: User, stop_id: str) -> Stop:
    """The courier's own stop, or a refusal: another courier's stop is simply not found."""
    stop = db.session.get(Stop, stop_id)
    if stop is None or stop.org_id != user.org_id or stop.route.courier_id != user.id:
        raise RuleViolation("delivery.stop_not_found", "No such stop on your routes.")
    if batch_cache() is not None:
        _route_stops_in_batch(stop.route_id)
    return stop


def _route_stops_in_batch(route_id: int) -> None:
    """A sync push: the route's stops with their slips and shops, read once for the batch.

    A courier's push walks most stops of a route; one by one each costs a query for its slip
    items and one for its shop. Kept in the batch cache, they stay in the session's identity
    map, so ``db.session.get`` and the relationships find them without asking the database.
    These are the session's own objects, so a record's change to a stop is seen at once.
    """
    per_batch(
        ("deliveries.route_stops", route_id),
        lambda: db.session.scalars(
            db.select(Stop)
            .where(Stop.route_id == route_id)
            .options(selectinload(Stop.items), selectinload(Stop.site))
        ).all(),
    )


def _own_route(user: User, route_id: int) -> Route:
    route = db.session.get(Route, route_id)
    if route is None or route.org_id != user.org_id or route.courier_id != user.id:
        raise RuleViolation("delivery.route_not_found", "No such route of yours.")
    return route


def managed_routes(user: User, day: date) -> list[Route]:
    teams = supervised_team_ids(user)
    if not teams:
        return []
    return list(
        db.session.scalars(
            db.select(Route)
            .where(Route.org_id == user.org_id, Route.team_id.in_(teams), Route.date == day)
            .order_by(Route.name, Route.id)
        )
    )


def dispatchers_of(route: Route) -> list[int]:
    """Who hears about the route's trouble: its team's supervisor, else the admins."""
    team = db.session.get(Team, route.team_id)
    if team is not None and team.supervisor_id:
        return [team.supervisor_id]
    return list(
        db.session.scalars(
            db.select(User.id).where(User.org_id == route.org_id, User.role == Role.ADMIN)
        )
    )


# ----- what phones learn --------------------------------------------------------------------


def stop_data(stop: Stop) -> dict:
    return {
        "id": stop.id,
        "route_id": stop.route_id,
        "sequence": stop.sequence,
        "customer_name": stop.customer_name,
        "customer_code": stop.customer_code,
        "address": stop.address,
        "promised_at": stop.promised_at.isoformat() if stop.promised_at else None,
        "state": stop.state,
        "version": stop.version,
        "ticket_no": stop.ticket_no,
        "tote_boxes": stop.tote_boxes,
        "amount_due_fen": stop.amount_due_fen,
        "settlement": stop.settlement,
        "items": [
            {
                "code": i.code,
                "variety": i.variety,
                "quantity": i.quantity,
                "special_shape": i.special_shape,
            }
            for i in stop.items
        ],
    }


def route_data(route: Route) -> dict:
    return {
        "id": route.id,
        "date": route.date.isoformat(),
        "name": route.name,
        "kind": route.kind,
        "vehicle_plate": route.vehicle_plate,
        "two_person_crew": route.two_person_crew,
        "stops": [s.id for s in route.stops],
    }


def publish_stop(stop: Stop) -> None:
    if stop.route.courier_id:
        publish(
            stop.org_id, "delivery.stop", stop.id, stop_data(stop), user_id=stop.route.courier_id
        )


def publish_route(route: Route, previous_courier_id: int | None = None) -> None:
    if previous_courier_id and previous_courier_id != route.courier_id:
        publish(
            route.org_id,
            "delivery.route",
            route.id,
            None,
            user_id=previous_courier_id,
            deleted=True,
        )
        for stop in route.stops:
            publish(
                route.org_id,
                "delivery.stop",
                stop.id,
                None,
                user_id=previous_courier_id,
                deleted=True,
            )
    if route.courier_id:
        publish(
            route.org_id, "delivery.route", route.id, route_data(route), user_id=route.courier_id
        )
        for stop in route.stops:
            publish_stop(stop)


def daypack_routes(user: User) -> list[dict]:
    if user.role != Role.COURIER:
        return []
    return [route_data(r) for r in courier_routes(user, today_for(user.org_id))]


def daypack_stops(user: User) -> list[dict]:
    if user.role != Role.COURIER:
        return []
    return [stop_data(s) for r in courier_routes(user, today_for(user.org_id)) for s in r.stops]


def daypack_pages(user: User) -> list[str]:
    if user.role != Role.COURIER:
        return []
    routes = courier_routes(user, today_for(user.org_id))
    pages = ["/deliveries/today", "/deliveries/end-of-day"]
    for route in routes:
        pages.append(f"/deliveries/routes/{route.id}/vehicle-check")
        pages.extend(f"/deliveries/stops/{s.id}" for s in route.stops)
    return pages


# ----- the day's progress, read back --------------------------------------------------------


def latest_vehicle_check(route: Route) -> VehicleCheck | None:
    # Once per sync push (every stop asks): a vehicle check in the push forgets it.
    return per_batch(
        ("deliveries.vehicle_check", route.id),
        lambda: db.session.scalar(
            db.select(VehicleCheck)
            .where(VehicleCheck.route_id == route.id)
            .order_by(VehicleCheck.device_time.desc(), VehicleCheck.received_at.desc())
            .limit(1)
        ),
    )


def effective_proofs(stop_ids: list[str]) -> dict[str, ProofOfDelivery]:
    """The proof that stands for each stop: the newest one no later proof corrects."""
    if not stop_ids:
        return {}
    proofs = db.session.scalars(
        db.select(ProofOfDelivery).where(ProofOfDelivery.stop_id.in_(stop_ids))
    ).all()
    corrected = {p.corrects_id for p in proofs if p.corrects_id}
    return {p.stop_id: p for p in proofs if p.id not in corrected}


def cash_collected_fen(route: Route) -> int:
    proofs = effective_proofs([s.id for s in route.stops])
    return sum(p.cash_received_fen or 0 for p in proofs.values())


def latest_handover(route: Route) -> CashHandover | None:
    handovers = db.session.scalars(
        db.select(CashHandover).where(CashHandover.route_id == route.id)
    ).all()
    corrected = {h.corrects_id for h in handovers if h.corrects_id}
    standing = [h for h in handovers if h.id not in corrected]
    return max(standing, key=lambda h: h.received_at) if standing else None


def day_close_of(route: Route) -> DayClose | None:
    return db.session.scalar(db.select(DayClose).where(DayClose.route_id == route.id).limit(1))


def refusals_of(route: Route) -> list[Refusal]:
    return list(
        db.session.scalars(
            db.select(Refusal)
            .join(Stop, Stop.id == Refusal.stop_id)
            .where(Stop.route_id == route.id)
            .order_by(Refusal.device_time)
        )
    )


def loaded_counts(route: Route) -> dict[str, int]:
    counts: Counter = Counter()
    for stop in route.stops:
        for item in stop.items:
            counts[item.code] += item.quantity
    return dict(counts)


def delivered_counts(route: Route) -> dict[str, int]:
    counts: Counter = Counter()
    for stop in route.stops:
        if stop.state == StopState.DELIVERED:
            for item in stop.items:
                counts[item.code] += item.quantity
    return dict(counts)


def expected_returns(route: Route) -> dict[str, int]:
    """What should come back to the depot: the goods of stops that were not delivered."""
    counts: Counter = Counter()
    for stop in route.stops:
        if stop.state != StopState.DELIVERED:
            for item in stop.items:
                counts[item.code] += item.quantity
    return dict(counts)


# ----- the courier's facts ------------------------------------------------------------------


def _gps(payload) -> dict:
    return {
        "latitude": payload.latitude,
        "longitude": payload.longitude,
        "accuracy_m": payload.accuracy_m,
    }


def _fact_columns(ctx, payload) -> dict:
    return {
        "id": payload.id,
        "org_id": ctx.user.org_id,
        "user_id": ctx.user.id,
        "device_time": ctx.device_time,
        "received_at": ctx.received_at,
        **_gps(payload),
    }


def _bump(stop: Stop, **changes) -> int:
    for name, value in changes.items():
        setattr(stop, name, value)
    stop.version += 1
    publish_stop(stop)
    return stop.version


def _require_started(route: Route) -> None:
    """VEH-01: no stop before a passed vehicle check; the newest check is the one that counts."""
    check = latest_vehicle_check(route)
    if check is None:
        raise RuleViolation(
            "delivery.vehicle_check_required", "Do the vehicle check before the first stop."
        )
    if not check.passed:
        raise RuleViolation(
            "delivery.vehicle_check_failed",
            "The last vehicle check failed: the route may not start.",
        )


def _require_open(stop: Stop) -> None:
    if stop.state not in OPEN_STATES:
        raise RuleViolation("delivery.stop_closed", f"This stop is already {stop.state}.")


def _require_arrived(stop: Stop) -> None:
    if stop.state == StopState.PENDING or not _has_arrival(stop):
        raise RuleViolation("delivery.arrive_first", "Record the arrival at the stop first.")


def _has_arrival(stop: Stop) -> bool:
    if batch_cache() is None:
        arrival = db.select(StopArrival.id).where(StopArrival.stop_id == stop.id).limit(1)
        return db.session.scalar(arrival) is not None
    return stop.id in _arrived_stops(stop.route_id)


def _arrived_stops(route_id: int) -> set[str]:
    """The route's stops with an arrival, once per sync push (``record_arrival`` adds to it)."""
    return per_batch(
        ("deliveries.arrived", route_id),
        lambda: set(
            db.session.scalars(
                db.select(StopArrival.stop_id)
                .join(Stop, Stop.id == StopArrival.stop_id)
                .where(Stop.route_id == route_id)
            )
        ),
    )


def record_vehicle_check(ctx, payload) -> VehicleCheck:
    """VEH-01: a failed item is stored (the truth), blocks the start and alerts the dispatcher."""
    route = _own_route(ctx.user, payload.route_id)
    results = {name: bool(getattr(payload, name)) for name in rules.DEFAULT_VEHICLE_CHECK_ITEMS}
    blocked = rules.vehicle_check_blocks_start(
        rules.VehicleCheckItem(name, passed) for name, passed in results.items()
    )
    check = VehicleCheck(
        **_fact_columns(ctx, payload),
        route_id=route.id,
        results=results,
        passed=not blocked,
        odometer_km=payload.odometer_km,
        note=payload.note.strip(),
    )
    db.session.add(check)
    forget_in_batch(("deliveries.vehicle_check", route.id))
    if blocked:
        failed = ", ".join(name for name, ok in results.items() if not ok)
        push.notify(
            "delivery.vehicle_check_failed",
            user_ids=dispatchers_of(route),
            org_id=route.org_id,
            url=f"/deliveries/routes/{route.id}",
            params={
                "courier": ctx.user.display_name,
                "plate": route.vehicle_plate,
                "failed": failed,
            },
            dedupe_key=f"vehicle-check:{payload.id}",
        )
    return check


push.forget_once_stored(VehicleCheck.id, "vehicle-check")


def record_arrival(ctx, payload) -> StopArrival:
    """Time and GPS at the stop; taking stops out of order needs a reason (DEL-01)."""
    stop = _own_stop(ctx.user, payload.stop_id)
    route = stop.route
    _require_started(route)
    _require_open(stop)
    reason = payload.out_of_order_reason.strip()
    planned = [s.sequence for s in route.stops]
    done = [s.sequence for s in route.stops if s.state in DONE_STATES]
    skipping = stop.state == StopState.PENDING and rules.out_of_order(planned, done, stop.sequence)
    if skipping and not reason:
        raise RuleViolation(
            "delivery.out_of_order_reason_required",
            "An earlier stop is still open: say why this one comes first.",
        )
    inside = distance = None
    site = stop.site
    if (
        site is not None
        and site.latitude is not None
        and payload.latitude is not None
        and payload.longitude is not None
    ):
        fence = geofence_check(
            site.latitude,
            site.longitude,
            site.geofence_radius_m,
            payload.latitude,
            payload.longitude,
            payload.accuracy_m,
        )
        inside, distance = fence.inside, fence.distance_m
    arrival = StopArrival(
        **_fact_columns(ctx, payload),
        stop_id=stop.id,
        inside_geofence=inside,
        distance_m=distance,
        out_of_order_reason=reason,
    )
    db.session.add(arrival)
    if batch_cache() is not None:
        _arrived_stops(stop.route_id).add(stop.id)
    if stop.state == StopState.PENDING:
        _bump(stop, state=StopState.ARRIVED, arrived_at=ctx.device_time)
    return arrival


def _customers_of_codes(route: Route, codes: list[str]) -> dict[str, str]:
    """Scanned item codes on the day's loads of the organisation -> the customer each is for.

    Only the codes asked about: the whole day's load is thousands of rows in a big depot.
    """
    if not codes:
        return {}
    rows = db.session.execute(
        db.select(SlipItem.code, Stop.customer_code)
        .join(Stop, Stop.id == SlipItem.stop_id)
        .join(Route, Route.id == Stop.route_id)
        .where(
            Route.org_id == route.org_id, Route.date == route.date, SlipItem.code.in_(set(codes))
        )
    ).all()
    return {code: customer for code, customer in rows}


def record_proof(ctx, payload) -> ProofOfDelivery:
    """Goods checked against the slip, cash taken, customer signed: the stop is delivered."""
    stop = _own_stop(ctx.user, payload.stop_id)
    route = stop.route
    correcting = None
    if payload.corrects_id:
        correcting = db.session.get(ProofOfDelivery, payload.corrects_id)
        if correcting is None or correcting.stop_id != stop.id:
            raise RuleViolation("delivery.correction_unknown", "The corrected proof is unknown.")
        if not payload.correction_reason.strip():
            raise RuleViolation(
                "delivery.correction_reason_required", "Say why this proof is corrected."
            )
    else:
        _require_started(route)
        _require_open(stop)
        _require_arrived(stop)

    checked = set(rules.split_codes(payload.checked_codes))
    scanned = rules.split_codes(payload.scanned_codes)
    load = _customers_of_codes(route, scanned)
    check = rules.check_item_codes(
        stop.customer_code, (rules.ScannedItem(code, load.get(code)) for code in scanned)
    )
    if check.wrong_customer:
        raise RuleViolation(
            "delivery.wrong_customer_code",
            f"Item codes of another customer: {', '.join(check.wrong_customer)}",
        )
    if check.unknown:
        raise RuleViolation(
            "delivery.unknown_item_code",
            f"Item codes not on today's load: {', '.join(check.unknown)}",
        )
    slip_codes = {item.code for item in stop.items}
    if checked - slip_codes:
        raise RuleViolation(
            "delivery.unknown_item_code",
            f"Ticked codes not on this slip: {', '.join(sorted(checked - slip_codes))}",
        )
    if slip_codes - checked - set(scanned):
        raise RuleViolation(
            "delivery.items_not_checked",
            f"Not checked yet: {', '.join(sorted(slip_codes - checked - set(scanned)))}",
        )
    if any(item.special_shape for item in stop.items) and not payload.special_confirmed:
        raise RuleViolation(
            "delivery.special_items_unconfirmed", "Confirm the special-shape items separately."
        )
    if route.two_person_crew and not (payload.driver_confirmed and payload.deliverer_confirmed):
        raise RuleViolation(
            "delivery.two_roles_required", "Driver and deliverer must both confirm the goods."
        )
    received = variance = None
    if stop.settlement == Settlement.CASH:
        if not payload.cash_received.strip():
            raise RuleViolation("delivery.cash_required", "Enter the cash received.")
        received = rules.parse_yuan_to_fen(payload.cash_received)
        variance = rules.cash_variance(stop.amount_due_fen, received)
    if not payload.signature:
        raise RuleViolation("delivery.signature_required", "The customer must sign.")
    if payload.condition == "damage" and not (payload.damage_quantity and payload.damage_photo):
        raise RuleViolation(
            "delivery.damage_details_required",
            "A damage report needs the quantity and a photo.",
        )
    on_time = rules.is_on_time(ctx.device_time, stop.promised_at) if stop.promised_at else None
    proof = ProofOfDelivery(
        **_fact_columns(ctx, payload),
        stop_id=stop.id,
        checked_codes=sorted(checked),
        scanned_codes=list(scanned),
        special_confirmed=payload.special_confirmed,
        amount_due_fen=stop.amount_due_fen,
        cash_received_fen=received,
        cash_variance_fen=variance,
        signature=payload.signature,
        photo=payload.photo,
        condition=payload.condition,
        damage_quantity=payload.damage_quantity if payload.condition == "damage" else None,
        damage_photo=payload.damage_photo if payload.condition == "damage" else None,
        damage_note=payload.damage_note.strip(),
        market_note=payload.market_note.strip(),
        product_info_explained=payload.product_info_explained,
        driver_confirmed=payload.driver_confirmed,
        deliverer_confirmed=payload.deliverer_confirmed,
        on_time=on_time,
        corrects_id=correcting.id if correcting else None,
        correction_reason=payload.correction_reason.strip(),
    )
    db.session.add(proof)
    if correcting is None:
        _bump(stop, state=StopState.DELIVERED, delivered_at=ctx.device_time, on_time=on_time)
    return proof


# ----- office corrections: a new fact naming the old one, with who and why -------------------


def proof_history(stop: Stop) -> list[ProofOfDelivery]:
    """Every proof of the stop, oldest first: the courier's, then the corrections."""
    return list(
        db.session.scalars(
            db.select(ProofOfDelivery)
            .where(ProofOfDelivery.stop_id == stop.id)
            .order_by(ProofOfDelivery.received_at, ProofOfDelivery.device_time)
        )
    )


def correct_proof(
    user: User,
    stop: Stop,
    proof_id: str,
    reason: str,
    cash_received: str = "",
    damage_quantity: int | None = None,
) -> ProofOfDelivery:
    """The office corrects a delivery record: the standing proof is copied into a new one that
    names it, with the corrected values, who corrected it and why. Nothing is edited in place;
    the courier is told."""
    if user.role not in MANAGERS or visible_stop(user, stop.id) is None:
        raise RuleViolation("delivery.team_not_yours", "Not a stop of a team you manage.")
    standing = effective_proofs([stop.id]).get(stop.id)
    if standing is None or standing.id != proof_id:
        raise RuleViolation(
            "delivery.correction_superseded", "Correct the record that stands now, not an old one."
        )
    reason = reason.strip()
    if not reason:
        raise RuleViolation("delivery.correction_reason_required", "Say why.")
    received, variance = standing.cash_received_fen, standing.cash_variance_fen
    if stop.is_cash and cash_received.strip():
        received = rules.parse_yuan_to_fen(cash_received)
        variance = rules.cash_variance(standing.amount_due_fen, received)
    condition, damaged = standing.condition, standing.damage_quantity
    if damage_quantity is not None:
        condition, damaged = ("damage", damage_quantity) if damage_quantity > 0 else ("ok", None)
    if (received, condition, damaged) == (
        standing.cash_received_fen,
        standing.condition,
        standing.damage_quantity,
    ):
        raise RuleViolation("delivery.correction_no_change", "The correction changes nothing.")
    now = utcnow()
    copied = {
        column: getattr(standing, column)
        for column in (
            "checked_codes",
            "scanned_codes",
            "special_confirmed",
            "amount_due_fen",
            "signature",
            "photo",
            "damage_photo",
            "damage_note",
            "market_note",
            "product_info_explained",
            "driver_confirmed",
            "deliverer_confirmed",
            "on_time",
        )
    }
    correction = ProofOfDelivery(
        id=new_uuid(),
        org_id=stop.org_id,
        user_id=user.id,
        device_time=now,
        received_at=now,
        stop_id=stop.id,
        **copied,
        cash_received_fen=received,
        cash_variance_fen=variance,
        condition=condition,
        damage_quantity=damaged,
        corrects_id=standing.id,
        correction_reason=reason,
    )
    db.session.add(correction)
    db.session.flush()
    if stop.route.courier_id:
        push.notify(
            "delivery.corrected",
            user_ids=[stop.route.courier_id],
            org_id=stop.org_id,
            url=f"/deliveries/stops/{stop.id}",
            params={"shop": stop.customer_name, "who": user.display_name, "reason": reason},
            dedupe_key=f"correction:{correction.id}",
        )
    return correction


push.forget_once_stored(ProofOfDelivery.id, "correction")  # the correcting proof's id


def record_refusal(ctx, payload) -> Refusal:
    """DEL-07: refused or failed; the stop stays open for the dispatcher, who is told at once."""
    stop = _own_stop(ctx.user, payload.stop_id)
    route = stop.route
    _require_started(route)
    _require_open(stop)
    _require_arrived(stop)
    if payload.reason_code == "other" and not payload.note.strip():
        raise RuleViolation("delivery.refusal_note_required", "Say what happened.")
    refusal = Refusal(
        **_fact_columns(ctx, payload),
        stop_id=stop.id,
        reason_code=payload.reason_code,
        note=payload.note.strip(),
        photo=payload.photo,
    )
    db.session.add(refusal)
    db.session.flush()
    _bump(stop, state=StopState.REFUSED, resolution=None)
    push.notify(
        "delivery.refused",
        user_ids=dispatchers_of(route),
        org_id=route.org_id,
        url=f"/deliveries/routes/{route.id}",
        params={
            "shop": stop.customer_name,
            "courier": ctx.user.display_name,
            "note": refusal.note or payload.reason_code,
        },
        dedupe_key=f"refusal:{refusal.id}",
    )
    return refusal


push.forget_once_stored(Refusal.id, "refusal")


def record_cash_handover(ctx, payload) -> CashHandover:
    """DEL-08: everything collected was deposited, or the difference is explained."""
    route = _own_route(ctx.user, payload.route_id)
    correcting = None
    if payload.corrects_id:
        correcting = db.session.get(CashHandover, payload.corrects_id)
        if correcting is None or correcting.route_id != route.id:
            raise RuleViolation("delivery.correction_unknown", "The corrected handover is unknown.")
    elif latest_handover(route) is not None:
        raise RuleViolation("delivery.handover_done", "The cash of this route was handed over.")
    still_open = [s for s in route.stops if s.state in OPEN_STATES]
    if still_open:
        raise RuleViolation(
            "delivery.stops_still_open",
            f"{len(still_open)} stops are still open: deliver or refuse them first.",
        )
    collected = cash_collected_fen(route)
    deposited = rules.parse_yuan_to_fen(payload.deposited)
    verdict = rules.day_close_check(collected, deposited, payload.variance_explanation)
    if not verdict.ok:
        raise RuleViolation(
            verdict.reason.value,
            f"Deposited differs from collected by {verdict.variance_fen} fen, unexplained.",
        )
    if deposited and not payload.deposit_reference.strip():
        raise RuleViolation(
            "delivery.deposit_reference_required", "Enter the deposit slip's reference."
        )
    handover = CashHandover(
        **_fact_columns(ctx, payload),
        route_id=route.id,
        collected_fen=collected,
        deposited_fen=deposited,
        variance_fen=verdict.variance_fen,
        deposit_reference=payload.deposit_reference.strip(),
        variance_explanation=payload.variance_explanation.strip(),
        bookkeeper_name=payload.bookkeeper_name.strip(),
        courier_signature=payload.courier_signature,
        bookkeeper_signature=payload.bookkeeper_signature,
        corrects_id=correcting.id if correcting else None,
    )
    db.session.add(handover)
    return handover


def _check_parking(route: Route, payload) -> int | None:
    """VEH-02: the phone's GPS fix must be inside the designated parking place's circle.

    Routes without a designated place (none was set) are not checked; the distance is kept."""
    if not route.has_parking_place:
        return None
    if payload.latitude is None or payload.longitude is None:
        raise RuleViolation(
            "delivery.parking_position_required",
            "No GPS position: the parking place cannot be checked.",
        )
    fence = geofence_check(
        route.parking_latitude,
        route.parking_longitude,
        route.parking_radius_m,
        payload.latitude,
        payload.longitude,
        payload.accuracy_m,
    )
    if not fence.inside:
        raise RuleViolation(
            "delivery.not_at_parking",
            f"{fence.distance_m} m from the designated parking place {route.parking_name}.",
        )
    return fence.distance_m


def record_day_close(ctx, payload) -> DayClose:
    """The day closes when the cash is handed over, the van balances and is parked (VEH-02)."""
    route = _own_route(ctx.user, payload.route_id)
    if day_close_of(route) is not None:
        raise RuleViolation("delivery.day_closed", "This day is already closed.")
    if latest_handover(route) is None:
        raise RuleViolation("delivery.handover_first", "Hand over the cash first.")
    if not (payload.vehicle_cleaned and payload.parked_at_designated):
        raise RuleViolation(
            "delivery.vehicle_not_parked",
            "Confirm the vehicle is cleaned and parked at the designated place.",
        )
    distance = _check_parking(route, payload)
    returned = payload.returned_counts()
    differences = rules.reconcile_items(loaded_counts(route), delivered_counts(route), returned)
    if differences:
        raise RuleViolation(
            "delivery.items_unbalanced",
            "Loaded ≠ delivered + returned for "
            + ", ".join(f"{d.code} ({d.difference:+d})" for d in differences),
        )
    close = DayClose(
        **_fact_columns(ctx, payload),
        route_id=route.id,
        returned=returned,
        vehicle_cleaned=True,
        parked_at_designated=True,
        parking_distance_m=distance,
        odometer_km=payload.odometer_km,
        note=payload.note.strip(),
    )
    db.session.add(close)
    return close


# ----- the stop's status: versioned, shared by the dispatcher and the courier ----------------

OFFICE_FIELDS = frozenset({"sequence", "promised_at"})
WORKER_FIELDS = frozenset({"state"})
# What a courier may set directly; delivered/refused come only with their proof or refusal.
COURIER_STATES = frozenset({StopState.PENDING, StopState.ARRIVED, StopState.SKIPPED})


def load_stop(ctx, record_id: str) -> Current | None:
    stop = visible_stop(ctx.user, record_id)
    if stop is None:
        return None
    return Current(
        version=stop.version,
        fields={
            "sequence": stop.sequence,
            "promised_at": stop.promised_at.isoformat() if stop.promised_at else None,
            "state": stop.state,
        },
    )


def apply_stop(ctx, payload) -> int:
    stop = visible_stop(ctx.user, str(payload.id))
    if stop is None:
        raise RuleViolation("delivery.stop_not_found", "No such stop on your routes.")
    changes = {k: getattr(payload, k) for k in payload.model_fields_set if k != "id"}
    return change_stop(ctx.user, stop, changes)


def change_stop(user: User, stop: Stop, changes: dict) -> int:
    """One path for the dispatcher's and the courier's changes to a stop's status."""
    if not changes:
        return stop.version
    if user.role == Role.COURIER:
        if set(changes) - WORKER_FIELDS:
            raise RuleViolation("delivery.office_field", "Only the dispatcher changes this.")
        if changes.get("state") not in COURIER_STATES:
            raise RuleViolation(
                "delivery.state_needs_record",
                "Delivered or refused is recorded with its proof or refusal.",
            )
        if stop.state not in OPEN_STATES:
            raise RuleViolation("delivery.stop_closed", f"This stop is already {stop.state}.")
    elif set(changes) - OFFICE_FIELDS:
        raise RuleViolation("delivery.worker_field", "The courier's field: not changed here.")
    return _bump(stop, **changes)


# ----- the dispatcher -----------------------------------------------------------------------


def _require_team(user: User, team_id: int) -> Team:
    team = db.session.get(Team, team_id)
    if team is None or team.org_id != user.org_id or team.id not in supervised_team_ids(user):
        raise RuleViolation("delivery.team_not_yours", "Not a team you manage.")
    return team


def couriers_for(user: User) -> list[User]:
    teams = supervised_team_ids(user)
    if not teams:
        return []
    return list(
        db.session.scalars(
            db.select(User)
            .where(
                User.org_id == user.org_id,
                User.role == Role.COURIER,
                User.active.is_(True),
                User.team_id.in_(teams),
            )
            .order_by(User.display_name)
        )
    )


def delivery_teams(user: User) -> list[Team]:
    teams = supervised_team_ids(user)
    return (
        list(
            db.session.scalars(
                db.select(Team)
                .where(Team.id.in_(teams), Team.kind == "delivery")
                .order_by(Team.name)
            )
        )
        if teams
        else []
    )


def _courier(user: User, courier_id: int | None, team: Team) -> User | None:
    if not courier_id:
        return None
    courier = db.session.get(User, courier_id)
    if (
        courier is None
        or courier.org_id != user.org_id
        or courier.role != Role.COURIER
        or courier.team_id != team.id
    ):
        raise RuleViolation("delivery.courier_not_in_team", "That courier is not in the team.")
    return courier


def create_route(
    user: User,
    *,
    team_id: int,
    day: date,
    name: str,
    kind: str = "fixed",
    courier_id: int | None = None,
    vehicle_plate: str = "",
    two_person_crew: bool = False,
    parking: tuple[str, float, float, int] | None = None,
) -> Route:
    team = _require_team(user, team_id)
    courier = _courier(user, courier_id, team)
    route = Route(
        org_id=user.org_id,
        team_id=team.id,
        date=day,
        name=name.strip(),
        kind=rules.RouteKind(kind).value,
        courier_id=courier.id if courier else None,
        vehicle_plate=vehicle_plate.strip().upper(),
        two_person_crew=two_person_crew,
        created_by_id=user.id,
    )
    if parking is not None:
        (
            route.parking_name,
            route.parking_latitude,
            route.parking_longitude,
            route.parking_radius_m,
        ) = parking
    db.session.add(route)
    db.session.flush()
    publish_route(route)
    return route


def assign_route(user: User, route: Route, courier_id: int | None, vehicle_plate: str) -> None:
    """Reassign the courier or the vehicle; both phones learn it, the new courier is told."""
    previous = route.courier_id
    courier = _courier(user, courier_id, route.team)
    route.courier_id = courier.id if courier else None
    route.vehicle_plate = vehicle_plate.strip().upper()
    db.session.flush()
    publish_route(route, previous_courier_id=previous)
    if courier:
        _tell_courier(route, courier.id)


def _tell_courier(route: Route, courier_id: int) -> None:
    push.notify(
        "delivery.route_changed",
        user_ids=[courier_id],
        org_id=route.org_id,
        url="/deliveries/today",
        params={"route": route.name},
    )


@dataclass
class StopSpec:
    customer_name: str
    customer_code: str
    address: str = ""
    ticket_no: str = ""
    tote_boxes: str = ""
    amount_due_fen: int = 0
    settlement: str = Settlement.ELECTRONIC
    phone_confirmed_at: datetime | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    site_id: int | None = None
    items: list[tuple[str, str, int, bool]] = field(default_factory=list)


def promised_for(kind: str, spec: StopSpec) -> datetime | None:
    try:
        return rules.promised_deadline(kind, spec.phone_confirmed_at, spec.window_end)
    except ValueError:
        return None


def add_stop(user: User, route: Route, spec: StopSpec, sequence: int | None = None) -> Stop:
    """The dispatcher adds a stop: the courier's phone learns it and the courier is told."""
    if spec.site_id:
        site = db.session.get(Site, spec.site_id)
        if site is None or site.org_id != user.org_id:
            raise RuleViolation("delivery.site_unknown", "No such site.")
    stop = add_stop_quietly(route, spec, sequence)
    publish_route(route)
    if route.courier_id:
        _tell_courier(route, route.courier_id)
    return stop


def add_stop_quietly(route: Route, spec: StopSpec, sequence: int | None = None) -> Stop:
    """A stop with its slip, published by the caller (imports and demo data add many)."""
    if sequence is None:
        sequence = max((s.sequence for s in route.stops), default=0) + 1
    stop = Stop(
        org_id=route.org_id,
        route=route,
        sequence=sequence,
        site_id=spec.site_id,
        customer_name=spec.customer_name.strip(),
        customer_code=spec.customer_code.strip(),
        address=spec.address.strip(),
        ticket_no=spec.ticket_no.strip(),
        tote_boxes=spec.tote_boxes.strip(),
        amount_due_fen=spec.amount_due_fen,
        settlement=Settlement(spec.settlement).value,
        phone_confirmed_at=spec.phone_confirmed_at,
        window_start=spec.window_start,
        window_end=spec.window_end,
        promised_at=promised_for(route.kind, spec),
        state=StopState.PENDING,
        version=1,
    )
    db.session.add(stop)
    for code, variety, quantity, special in spec.items:
        db.session.add(
            SlipItem(
                stop=stop, code=code, variety=variety, quantity=quantity, special_shape=special
            )
        )
    db.session.flush()
    return stop


def move_stop(user: User, stop: Stop, direction: int) -> None:
    """Swap with the neighbour before (-1) or after (+1); the courier's phone learns both."""
    stops = list(stop.route.stops)
    index = stops.index(stop)
    other_index = index + direction
    if not 0 <= other_index < len(stops):
        return
    other = stops[other_index]
    mine, theirs = stop.sequence, other.sequence
    change_stop(user, stop, {"sequence": theirs})
    change_stop(user, other, {"sequence": mine})
    db.session.flush()
    db.session.expire(stop.route, ["stops"])


def resolve_refusal(user: User, stop: Stop, resolution: str) -> None:
    """DEL-07: the dispatcher closes a refusal: deliver again later, or take the goods back."""
    if stop.state != StopState.REFUSED:
        raise RuleViolation("delivery.not_refused", "This stop has no open refusal.")
    if resolution not in ("redeliver", "return"):
        raise RuleViolation("delivery.resolution_unknown", "Choose re-deliver or return.")
    state = StopState.PENDING if resolution == "redeliver" else StopState.RETURNED
    _bump(stop, state=state, resolution=resolution, resolved_at=utcnow(), resolved_by_id=user.id)
    if resolution == "redeliver" and stop.route.courier_id:
        _tell_courier(stop.route, stop.route.courier_id)


# ----- CSV import of delivery slips (all or nothing) ------------------------------------------

CSV_COLUMNS = (
    "date",
    "route",
    "courier",
    "vehicle",
    "kind",
    "sequence",
    "customer_code",
    "customer",
    "address",
    "ticket_no",
    "tote_boxes",
    "amount_due",
    "settlement",
    "phone_confirmed_at",
    "window_start",
    "window_end",
    "item_code",
    "variety",
    "quantity",
    "special",
)
REQUIRED_COLUMNS = (
    "date",
    "route",
    "sequence",
    "customer_code",
    "customer",
    "ticket_no",
    "item_code",
    "variety",
    "quantity",
)


@dataclass
class ImportResult:
    errors: list[tuple[int, str]] = field(default_factory=list)
    routes: int = 0
    stops: int = 0
    items: int = 0


def _parse_local(org_id: int, text: str) -> datetime | None:
    text = text.strip()
    if not text:
        return None
    value = datetime.fromisoformat(text.replace("/", "-"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=org_tz(org_id))
    return value


def import_slips(user: User, team_id: int, text: str) -> ImportResult:
    """One CSV line per slip item; lines with the same route and ticket make one stop.

    Every line is checked first; any error (with its line number) means nothing is stored.
    """
    result = ImportResult()
    team = _require_team(user, team_id)
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        result.errors.append((1, "missing columns: " + ", ".join(missing)))
        return result
    reader.fieldnames = header
    couriers = {u.username: u for u in couriers_for(user) if u.team_id == team.id}
    routes: dict[tuple, dict] = {}
    code_owners: dict[str, str] = {}  # an item code is marked for one customer (DEL-02)
    for line, row in enumerate(reader, start=2):
        row = {k: (v or "").strip() for k, v in row.items() if k}
        problems = []
        try:
            day = date.fromisoformat(row["date"])
        except ValueError:
            problems.append(f"date {row['date']!r} is not YYYY-MM-DD")
            day = None
        kind = row.get("kind") or "fixed"
        if kind not in ("fixed", "flexible"):
            problems.append(f"kind {kind!r} is neither fixed nor flexible")
        courier_name = row.get("courier", "")
        if courier_name and courier_name not in couriers:
            problems.append(f"courier {courier_name!r} is not in team {team.name}")
        for name in ("route", "customer_code", "customer", "ticket_no", "item_code", "variety"):
            if not row.get(name):
                problems.append(f"{name} is empty")
        try:
            sequence = int(row["sequence"])
            if sequence < 1:
                raise ValueError
        except ValueError:
            problems.append(f"sequence {row['sequence']!r} is not a positive whole number")
            sequence = 0
        try:
            quantity = int(row["quantity"])
            if quantity < 1:
                raise ValueError
        except ValueError:
            problems.append(f"quantity {row['quantity']!r} is not a positive whole number")
            quantity = 0
        try:
            amount = rules.parse_yuan_to_fen(row.get("amount_due") or "0")
        except ValueError:
            problems.append(f"amount_due {row.get('amount_due')!r} is not an amount in yuan")
            amount = 0
        settlement = row.get("settlement") or "electronic"
        if settlement not in ("cash", "electronic"):
            problems.append(f"settlement {settlement!r} is neither cash nor electronic")
        times = {}
        for name in ("phone_confirmed_at", "window_start", "window_end"):
            try:
                times[name] = _parse_local(user.org_id, row.get(name, ""))
            except ValueError:
                problems.append(f"{name} {row.get(name)!r} is not a date and time")
                times[name] = None
        if kind == "flexible" and not times["phone_confirmed_at"]:
            problems.append("a flexible route needs phone_confirmed_at")
        if kind == "fixed" and not times["window_end"]:
            problems.append("a fixed route needs window_end")
        if problems:
            result.errors.extend((line, p) for p in problems)
            continue
        key = (day, row["route"])
        route = routes.setdefault(
            key,
            {
                "kind": kind,
                "courier": couriers.get(courier_name),
                "vehicle": row.get("vehicle", ""),
                "stops": {},
                "line": line,
            },
        )
        if route["kind"] != kind:
            result.errors.append((line, f"route {row['route']} is both fixed and flexible"))
            continue
        stop = route["stops"].get(row["ticket_no"])
        if stop is None:
            stop = route["stops"][row["ticket_no"]] = {
                "sequence": sequence,
                "spec": StopSpec(
                    customer_name=row["customer"],
                    customer_code=row["customer_code"],
                    address=row.get("address", ""),
                    ticket_no=row["ticket_no"],
                    tote_boxes=row.get("tote_boxes", ""),
                    amount_due_fen=amount,
                    settlement=settlement,
                    **times,
                ),
                "codes": set(),
            }
        elif stop["spec"].customer_code != row["customer_code"]:
            result.errors.append((line, f"ticket {row['ticket_no']} has two customer codes"))
            continue
        owner = code_owners.setdefault(row["item_code"], row["customer_code"])
        if owner != row["customer_code"]:
            result.errors.append((line, f"item code {row['item_code']} is on two customers' slips"))
            continue
        if row["item_code"] in stop["codes"]:
            result.errors.append((line, f"item code {row['item_code']} twice on one ticket"))
            continue
        stop["codes"].add(row["item_code"])
        special = row.get("special", "").lower() in ("1", "yes", "true", "y", "是", "异型")
        stop["spec"].items.append((row["item_code"], row["variety"], quantity, special))
    if result.errors or not routes:
        if not routes and not result.errors:
            result.errors.append((1, "the file has no slip lines"))
        result.errors.sort()
        return result
    for (day, name), spec in routes.items():
        route = create_route(
            user,
            team_id=team.id,
            day=day,
            name=name,
            kind=spec["kind"],
            courier_id=spec["courier"].id if spec["courier"] else None,
            vehicle_plate=spec["vehicle"],
        )
        result.routes += 1
        for stop in sorted(spec["stops"].values(), key=lambda s: s["sequence"]):
            add_stop_quietly(route, stop["spec"], sequence=stop["sequence"])
            result.stops += 1
            result.items += len(stop["spec"].items)
        db.session.expire(route, ["stops"])
        publish_route(route)
        if route.courier_id:
            _tell_courier(route, route.courier_id)
    return result


# ----- registers (REC-03, REC-04) -------------------------------------------------------------


def _routes_between(
    user: User, start: date, end: date, courier_id: int | None = None
) -> list[Route]:
    """The routes of the user's teams between two dates, optionally of one courier only."""
    teams = supervised_team_ids(user)
    if not teams:
        return []
    query = db.select(Route).where(
        Route.org_id == user.org_id,
        Route.team_id.in_(teams),
        Route.date >= start,
        Route.date <= end,
    )
    if courier_id:
        query = query.where(Route.courier_id == courier_id)
    return list(db.session.scalars(query.order_by(Route.date, Route.name, Route.id)))


def _local(value: datetime | None, tz: ZoneInfo) -> str:
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M") if value else ""


def _yuan(fen: int | None) -> str:
    return "" if fen is None else f"{fen // 100}.{fen % 100:02d}" if fen >= 0 else f"-{_yuan(-fen)}"


STATUS_REGISTER_HEADER = (
    "date",
    "route",
    "courier",
    "vehicle",
    "sequence",
    "customer_code",
    "customer",
    "ticket_no",
    "promised",
    "arrived",
    "state",
    "refusal_reason",
    "on_time",
    "discrepancies",
    "signature",
    "amount_due",
    "cash_collected",
    "notes",
)


def status_register(
    user: User, start: date, end: date, courier_id: int | None = None
) -> list[list[str]]:
    """送货情况登记表 (REC-04): one row per stop, filled from the day's records."""
    tz = org_tz(user.org_id)
    rows = []
    for route in _routes_between(user, start, end, courier_id):
        stops = list(route.stops)
        proofs = effective_proofs([s.id for s in stops])
        refusals = defaultdict(list)
        for refusal in refusals_of(route):
            refusals[refusal.stop_id].append(refusal)
        for stop in stops:
            proof = proofs.get(stop.id)
            refusal = refusals[stop.id][-1] if refusals[stop.id] else None
            discrepancies = []
            if proof and proof.cash_variance_fen:
                discrepancies.append(f"cash {_yuan(proof.cash_variance_fen)}")
            if proof and proof.condition == "damage":
                discrepancies.append(f"damaged x{proof.damage_quantity}")
            notes = "; ".join(
                n
                for n in (proof.market_note if proof else "", refusal.note if refusal else "")
                if n
            )
            rows.append(
                [
                    route.date.isoformat(),
                    route.name,
                    route.courier.display_name if route.courier else "",
                    route.vehicle_plate,
                    str(stop.sequence),
                    stop.customer_code,
                    stop.customer_name,
                    stop.ticket_no,
                    _local(stop.promised_at, tz),
                    _local(stop.arrived_at, tz),
                    stop.state,
                    refusal.reason_code if refusal else "",
                    "" if stop.on_time is None else ("yes" if stop.on_time else "no"),
                    "; ".join(discrepancies),
                    "yes" if proof and proof.signature else "no",
                    _yuan(stop.amount_due_fen),
                    _yuan(proof.cash_received_fen) if proof else "",
                    notes,
                ]
            )
    return rows


DRIVING_LOG_HEADER = (
    "date",
    "vehicle",
    "driver",
    "route",
    "pre_trip_check",
    "failed_items",
    "departure",
    "return",
    "odometer_start",
    "odometer_end",
    "stops",
    "delivered",
    "refused",
    "cleaned",
    "parked_at_designated",
    "cash_collected",
    "cash_deposited",
)


def driving_log(
    user: User, start: date, end: date, courier_id: int | None = None
) -> list[list[str]]:
    """行车日志 (REC-03): one row per route and day, filled from the day's facts."""
    tz = org_tz(user.org_id)
    rows = []
    for route in _routes_between(user, start, end, courier_id):
        check = latest_vehicle_check(route)
        close = day_close_of(route)
        handover = latest_handover(route)
        stops = list(route.stops)
        arrivals = [s.arrived_at for s in stops if s.arrived_at]
        rows.append(
            [
                route.date.isoformat(),
                route.vehicle_plate,
                route.courier.display_name if route.courier else "",
                route.name,
                "" if check is None else ("passed" if check.passed else "failed"),
                "" if check is None else " ".join(k for k, v in check.results.items() if not v),
                _local(check.device_time if check else (min(arrivals) if arrivals else None), tz),
                _local(close.device_time if close else None, tz),
                "" if check is None or check.odometer_km is None else str(check.odometer_km),
                "" if close is None or close.odometer_km is None else str(close.odometer_km),
                str(len(stops)),
                str(sum(1 for s in stops if s.state == StopState.DELIVERED)),
                str(sum(1 for s in stops if s.state in (StopState.REFUSED, StopState.RETURNED))),
                "yes" if close and close.vehicle_cleaned else "",
                "yes" if close and close.parked_at_designated else "",
                _yuan(handover.collected_fen) if handover else _yuan(cash_collected_fen(route)),
                _yuan(handover.deposited_fen) if handover else "",
            ]
        )
    return rows


def to_csv(header, rows) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return "\ufeff" + buffer.getvalue()  # Excel opens UTF-8 Chinese only with the BOM


# ----- the rule clock: late deliveries (SLA-01) ----------------------------------------------

LATE_LOOKBACK = timedelta(days=7)


def late_stops(now: datetime) -> int:
    """Open stops past their promised time: the dispatcher and the courier hear it once."""
    candidates = db.session.scalars(
        db.select(Stop).where(
            Stop.state.in_([s.value for s in OPEN_STATES]),
            Stop.promised_at.is_not(None),
            Stop.promised_at < now,
            Stop.promised_at > now - LATE_LOOKBACK,
        )
    ).all()
    raised = 0
    for stop in candidates:
        if rules.is_on_time(now, stop.promised_at):
            continue
        route = stop.route
        recipients = dispatchers_of(route) + ([route.courier_id] if route.courier_id else [])
        event = push.notify(
            "delivery.late",
            user_ids=recipients,
            org_id=stop.org_id,
            url=f"/deliveries/routes/{route.id}",
            params={"shop": stop.customer_name, "due": stop.promised_at},
            dedupe_key=f"delivery-late:{stop.id}",
        )
        raised += event is not None
    return raised


# Closed for good: no path leads a stop out of these (a refused stop may be re-delivered).
_FINAL_STATES = frozenset({StopState.DELIVERED, StopState.RETURNED, StopState.SKIPPED})


@push.forget_keys("delivery-late")
def _dead_late_keys(now: datetime, keys: list[str]) -> list[str]:
    """The check reads open stops; the promise may be moved, so only a final state is final."""
    return push.dead_unless(keys, Stop.id, Stop.state.not_in([s.value for s in _FINAL_STATES]))


RISK_HORIZON = timedelta(hours=12)


def late_soon_stops(now: datetime) -> int:
    """DEL-11: open stops the route order will bring past their promise are warned about
    beforehand, to the courier and the dispatcher, once per stop and promise."""
    routes_at_risk = db.session.scalars(
        db.select(Stop.route_id)
        .where(
            Stop.state.in_([s.value for s in OPEN_STATES]),
            Stop.promised_at.is_not(None),
            Stop.promised_at > now,
            Stop.promised_at < now + RISK_HORIZON,
        )
        .distinct()
    ).all()
    raised = 0
    for route_id in routes_at_risk:
        route = db.session.get(Route, route_id)
        open_stops = [s for s in route.stops if s.state in OPEN_STATES]
        by_id = {s.id: s for s in open_stops}
        forecast = rules.at_risk_of_lateness(
            now, [rules.OpenStop(s.id, s.promised_at) for s in open_stops]
        )
        recipients = dispatchers_of(route) + ([route.courier_id] if route.courier_id else [])
        for stop_id, _eta in forecast:
            stop = by_id[stop_id]
            event = push.notify(
                "delivery.late_soon",
                user_ids=recipients,
                org_id=route.org_id,
                url=f"/deliveries/stops/{stop.id}",
                params={
                    "shop": stop.customer_name,
                    "due": stop.promised_at,
                    "ahead": open_stops.index(stop),
                },
                dedupe_key=f"delivery-late-soon:{stop.id}:{stop.promised_at.isoformat()}",
            )
            raised += event is not None
    return raised


@push.forget_keys("delivery-late-soon")
def _dead_late_soon_keys(now: datetime, keys: list[str]) -> list[str]:
    """The check reads promises still ahead, and the key holds its promise: once past, dead."""
    return [key for key in keys if _promise_passed(key, now)]


def _promise_passed(key: str, now: datetime) -> bool:
    try:
        return datetime.fromisoformat(key.split(":", 2)[2]) <= now
    except (IndexError, TypeError, ValueError):  # not a key this check wrote: kept
        return False


# ----- the customer's rating, from the e-receipt (DEL-15) -----------------------------------

_RATING_SALT = "delivery-rating"


def rating_token(stop: Stop) -> str:
    """What the e-receipt's QR code carries: the customer rates without an account."""
    from flask import current_app
    from itsdangerous import URLSafeSerializer

    return URLSafeSerializer(current_app.secret_key, salt=_RATING_SALT).dumps(stop.id)


def stop_from_token(token: str) -> Stop | None:
    from flask import current_app
    from itsdangerous import BadSignature, URLSafeSerializer

    try:
        stop_id = URLSafeSerializer(current_app.secret_key, salt=_RATING_SALT).loads(token)
    except BadSignature:
        return None
    return db.session.get(Stop, stop_id) if isinstance(stop_id, str) else None


def rating_of(stop: Stop) -> DeliveryRating | None:
    return db.session.scalar(db.select(DeliveryRating).where(DeliveryRating.stop_id == stop.id))


def rate_delivery(stop: Stop, stars: int, comment: str) -> DeliveryRating:
    """One rating per delivered stop; it is kept as given."""
    if effective_proofs([stop.id]).get(stop.id) is None:
        raise RuleViolation("delivery.not_delivered_yet", "This delivery is not completed yet.")
    if rating_of(stop) is not None:
        raise RuleViolation("delivery.already_rated", "This delivery was already rated.")
    if not 1 <= stars <= 5:
        raise RuleViolation("delivery.stars_out_of_range", "Choose 1 to 5 stars.")
    rating = DeliveryRating(
        org_id=stop.org_id, stop_id=stop.id, stars=stars, comment=comment.strip()[:2000]
    )
    db.session.add(rating)
    db.session.flush()
    return rating


# ----- the daily delivery report (DEL-09) ----------------------------------------------------

DAILY_REPORT_HEADER = (
    "date",
    "courier",
    "routes",
    "vehicles",
    "stops",
    "delivered",
    "refused",
    "skipped",
    "open",
    "on_time",
    "late",
    "cash_due",
    "cash_collected",
    "cash_handed_in",
    "cash_difference",
    "deposit_reference",
    "day_closed",
    "rating",
)


@dataclass
class DailyRow:
    day: date
    courier: User | None
    routes: list[Route]
    tally: rules.DayTally
    deposit_references: list[str]
    closed: bool
    stars: list[int] = field(default_factory=list)

    @property
    def rating(self) -> str:
        """The customers' mean rating, one decimal; empty when nobody rated."""
        if not self.stars:
            return ""
        tenths = round(sum(self.stars) * 10 / len(self.stars))
        return f"{tenths // 10}.{tenths % 10}"

    def csv(self) -> list[str]:
        t = self.tally
        return [
            self.day.isoformat(),
            self.courier.display_name if self.courier else "",
            " / ".join(r.name for r in self.routes),
            " / ".join(r.vehicle_plate for r in self.routes if r.vehicle_plate),
            str(t.stops),
            str(t.delivered),
            str(t.refused),
            str(t.skipped),
            str(t.open),
            str(t.on_time),
            str(t.late),
            _yuan(t.cash_due_fen),
            _yuan(t.cash_collected_fen),
            _yuan(t.cash_handed_in_fen),
            _yuan(t.cash_difference_fen),
            " ".join(self.deposit_references),
            "yes" if self.closed else "no",
            self.rating,
        ]


def daily_report(user: User, day: date) -> list[DailyRow]:
    """Per courier, the day's stops, deliveries, refusals and cash collected vs handed in."""
    by_courier: dict[int | None, list[Route]] = defaultdict(list)
    for route in managed_routes(user, day):
        by_courier[route.courier_id].append(route)
    rows = []
    for courier_id, routes in by_courier.items():
        outcomes = []
        handed_in = None
        references = []
        for route in routes:
            proofs = effective_proofs([s.id for s in route.stops])
            for stop in route.stops:
                proof = proofs.get(stop.id)
                outcomes.append(
                    rules.StopOutcome(
                        state=stop.state,
                        on_time=stop.on_time,
                        cash_due_fen=stop.amount_due_fen if stop.is_cash else 0,
                        cash_received_fen=proof.cash_received_fen if proof else None,
                    )
                )
            handover = latest_handover(route)
            if handover is not None:
                handed_in = (handed_in or 0) + handover.deposited_fen
                if handover.deposit_reference:
                    references.append(handover.deposit_reference)
        rows.append(
            DailyRow(
                day=day,
                courier=db.session.get(User, courier_id) if courier_id else None,
                routes=routes,
                tally=rules.tally_day(outcomes, handed_in),
                deposit_references=references,
                closed=all(day_close_of(r) is not None for r in routes),
                stars=list(
                    db.session.scalars(
                        db.select(DeliveryRating.stars)
                        .join(Stop, Stop.id == DeliveryRating.stop_id)
                        .where(Stop.route_id.in_([r.id for r in routes]))
                    )
                ),
            )
        )
    rows.sort(key=lambda r: (r.courier is None, r.courier.display_name if r.courier else ""))
    return rows


def parse_returned(text: str) -> dict[str, int]:
    """The day-close form's ``{"code": quantity}`` (JSON, made on the phone)."""
    data = json.loads(text or "{}")
    if not isinstance(data, dict):
        raise ValueError("returned must be an object of code -> quantity")
    out = {}
    for code, quantity in data.items():
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
            raise ValueError(f"returned quantity of {code} must be a whole number")
        if quantity:
            out[str(code)] = quantity
    return out


# ----- the customer's report from the e-receipt (DEL-15) -------------------------------------

# topic -> (complaint category, cause class)
REPORT_CLASSES = {
    "conduct": ("attitude", "human"),
    "goods": ("other", "quality"),
    "late": ("efficiency", "human"),
    "other": ("other", "other"),
}


def report_problem(user: User, stop: Stop, topic: str, text: str, name: str, phone: str):
    """The customer reports a problem with a delivery: a complaint opens (DEL-15, CMP-01).

    The route's dispatcher takes it, so a complaint about the courier is not owned by the
    courier whose phone showed the receipt; the complaint says who handed the phone over.
    Returns the complaint; never commits.
    """
    from fieldapp.complaints import service as complaints
    from fieldapp.complaints.records import IntakePayload
    from fieldapp.models.types import new_uuid
    from fieldapp.sync.registry import ApplyContext

    route = stop.route
    dispatcher = None
    for user_id in dispatchers_of(route):
        dispatcher = db.session.get(User, user_id)
        if dispatcher is not None:
            break
    taker = dispatcher or user
    category, cause_class = REPORT_CLASSES.get(topic, REPORT_CLASSES["other"])
    courier = route.courier.display_name if route.courier else ""
    payload = IntakePayload(
        id=new_uuid(),
        site_id=stop.site_id,
        client_name=stop.customer_name[:120],
        complainant=name.strip()[:80],
        complainant_phone=phone.strip()[:32] or None,
        channel="app",
        subject=f"{courier} · {stop.ticket_no or stop.customer_code}"[:200],
        content=(
            f"{text.strip()}\n\n— {route.date.isoformat()} {route.name}, "
            f"{stop.customer_code}, ticket {stop.ticket_no}; "
            f"sent from the e-receipt on {user.display_name}'s device."
        )[:4000],
        category=category,
        cause_class=cause_class,
        severity="minor",
    )
    now = utcnow()
    ctx = ApplyContext(
        user=taker, device=None, mutation_id=payload.id, device_time=now, received_at=now
    )
    return complaints.take_complaint(ctx, payload)
