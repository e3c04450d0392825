"""Where today's actions were recorded: the points of the Today board's map.

Every field fact that carries a GPS fix (a delivery arrival, proof or refusal; a checkpoint
scan, a sign-in or sign-out at a post, a spot check; a visit check-in or check-out) becomes a
point with its time, worker, kind and the page of the record behind it. One ``UNION ALL``
query does the filtering and ordering in the database. Scope is the same as the rest of the
board: the organisation, and the teams the user supervises (every team for an admin), judged
by the record's route, site or visit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from urllib.parse import urlsplit

from flask import url_for
from flask_babel import lazy_gettext as _l
from sqlalchemy import String, and_, case, cast, literal

from fieldapp.access import supervised_team_ids
from fieldapp.dashboard.service import _aware, org_zone
from fieldapp.deliveries.models import ProofOfDelivery, Refusal, Route, Stop, StopArrival
from fieldapp.extensions import db
from fieldapp.models import Site, User, utcnow
from fieldapp.patrols.models import CheckpointScan, Shift, ShiftSignIn, SpotCheck
from fieldapp.visits.models import Visit, VisitCheckIn, VisitCheckOut

# Newest first, at most this many points (a busy organisation's day stays a readable map).
MAX_POINTS = 2000

KIND_LABELS = {
    "arrival": _l("Arrived at a stop"),
    "proof": _l("Delivery signed for"),
    "refusal": _l("Delivery refused"),
    "scan": _l("Checkpoint scanned"),
    "sign_in": _l("Signed in at the post"),
    "sign_out": _l("Signed out at the post"),
    "spot_check": _l("Spot check"),
    "check_in": _l("Visit check-in"),
    "check_out": _l("Visit check-out"),
}
# Which domain a kind belongs to (the marker's colour) and the page its reference opens.
DOMAIN_OF_KIND = {
    "arrival": "deliveries",
    "proof": "deliveries",
    "refusal": "deliveries",
    "scan": "patrols",
    "sign_in": "patrols",
    "sign_out": "patrols",
    "spot_check": "patrols",
    "check_in": "visits",
    "check_out": "visits",
}
DOMAIN_LABELS = {
    "deliveries": _l("Deliveries"),
    "patrols": _l("Guard duty"),
    "visits": _l("Visits"),
}


@dataclass(frozen=True)
class MapPoint:
    kind: str
    record_id: str
    at: datetime
    worker: str
    latitude: float
    longitude: float
    ref: str  # the stop, site or visit whose page shows the record


def _located(model, at_column, start: datetime, end: datetime):
    return and_(
        model.latitude.is_not(None),
        model.longitude.is_not(None),
        at_column >= start,
        at_column < end,
    )


def _delivery_facts(model, kind: str, org_id: int, teams: list[int], start, end):
    return (
        db.select(
            literal(kind).label("kind"),
            model.id.label("record_id"),
            model.device_time.label("at"),
            User.display_name.label("worker"),
            model.latitude.label("latitude"),
            model.longitude.label("longitude"),
            cast(model.stop_id, String).label("ref"),
        )
        .join(Stop, Stop.id == model.stop_id)
        .join(Route, Route.id == Stop.route_id)
        .join(User, User.id == model.user_id)
        .where(
            model.org_id == org_id,
            Route.org_id == org_id,
            Route.team_id.in_(teams),
            _located(model, model.device_time, start, end),
        )
    )


def _shift_facts(model, kind, at_column, org_id: int, teams: list[int], start, end):
    return (
        db.select(
            kind.label("kind"),
            model.id.label("record_id"),
            at_column.label("at"),
            User.display_name.label("worker"),
            model.latitude.label("latitude"),
            model.longitude.label("longitude"),
            cast(Shift.site_id, String).label("ref"),
        )
        .join(Shift, Shift.id == model.shift_id)
        .join(Site, Site.id == Shift.site_id)
        .join(User, User.id == model.guard_id)
        .where(
            model.org_id == org_id,
            Site.org_id == org_id,
            Site.team_id.in_(teams),
            _located(model, at_column, start, end),
        )
    )


def _spot_checks(org_id: int, teams: list[int], start, end):
    return (
        db.select(
            literal("spot_check").label("kind"),
            SpotCheck.id.label("record_id"),
            SpotCheck.at.label("at"),
            User.display_name.label("worker"),
            SpotCheck.latitude.label("latitude"),
            SpotCheck.longitude.label("longitude"),
            cast(SpotCheck.site_id, String).label("ref"),
        )
        .join(Site, Site.id == SpotCheck.site_id)
        .join(User, User.id == SpotCheck.supervisor_id)
        .where(
            SpotCheck.org_id == org_id,
            Site.org_id == org_id,
            Site.team_id.in_(teams),
            _located(SpotCheck, SpotCheck.at, start, end),
        )
    )


def _presences(model, kind: str, org_id: int, teams: list[int], start, end):
    return (
        db.select(
            literal(kind).label("kind"),
            model.id.label("record_id"),
            model.at.label("at"),
            User.display_name.label("worker"),
            model.latitude.label("latitude"),
            model.longitude.label("longitude"),
            cast(model.visit_id, String).label("ref"),
        )
        .join(Visit, Visit.id == model.visit_id)
        .join(User, User.id == model.user_id)
        .where(
            model.org_id == org_id,
            Visit.org_id == org_id,
            Visit.team_id.in_(teams),
            _located(model, model.at, start, end),
        )
    )


def day_bounds(user: User, now: datetime) -> tuple[datetime, datetime]:
    """Today on the organisation's wall clock, as UTC instants [start, end)."""
    zone = org_zone(user.org_id)
    day = now.astimezone(zone).date()
    start = datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)
    following = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)
    return start, following.astimezone(UTC)


def points(user: User, now: datetime | None = None) -> list[MapPoint]:
    """Today's located actions of the user's teams, oldest first (at most ``MAX_POINTS``)."""
    start, end = day_bounds(user, now or utcnow())
    teams = supervised_team_ids(user) or [-1]
    org = user.org_id
    signed = case((ShiftSignIn.action == "out", "sign_out"), else_="sign_in")
    union = db.union_all(
        _delivery_facts(StopArrival, "arrival", org, teams, start, end),
        _delivery_facts(ProofOfDelivery, "proof", org, teams, start, end),
        _delivery_facts(Refusal, "refusal", org, teams, start, end),
        _shift_facts(
            CheckpointScan, literal("scan"), CheckpointScan.scanned_at, org, teams, start, end
        ),
        _shift_facts(ShiftSignIn, signed, ShiftSignIn.at, org, teams, start, end),
        _spot_checks(org, teams, start, end),
        _presences(VisitCheckIn, "check_in", org, teams, start, end),
        _presences(VisitCheckOut, "check_out", org, teams, start, end),
    ).subquery()
    query = db.select(union).order_by(union.c.at.desc(), union.c.record_id).limit(MAX_POINTS)
    rows = [
        MapPoint(kind, record_id, _aware(at), worker, float(lat), float(lng), ref)
        for kind, record_id, at, worker, lat, lng, ref in db.session.execute(query)
    ]
    rows.reverse()
    return rows


def record_url(point: MapPoint) -> str:
    domain = DOMAIN_OF_KIND[point.kind]
    if domain == "deliveries":
        return url_for("deliveries.stop", stop_id=point.ref)
    if domain == "patrols":
        return url_for("patrols.site", site_id=int(point.ref))
    return url_for("visits.visit", visit_id=point.ref)


def sites(user: User) -> list[Site]:
    """The located sites of the user's teams: their geofences are drawn under the points."""
    teams = supervised_team_ids(user) or [-1]
    query = db.select(Site).where(
        Site.org_id == user.org_id,
        Site.team_id.in_(teams),
        Site.latitude.is_not(None),
        Site.longitude.is_not(None),
    )
    return list(db.session.scalars(query.order_by(Site.name)))


def as_json(user: User, now: datetime | None = None) -> dict:
    now = now or utcnow()
    zone = org_zone(user.org_id)
    return {
        "day": now.astimezone(zone).date().isoformat(),
        "actions": [
            {
                "id": p.record_id,
                "kind": p.kind,
                "label": str(KIND_LABELS[p.kind]),
                "domain": DOMAIN_OF_KIND[p.kind],
                "at": p.at.isoformat(),
                "time": p.at.astimezone(zone).strftime("%H:%M"),
                "worker": p.worker,
                "lat": p.latitude,
                "lng": p.longitude,
                "url": record_url(p),
            }
            for p in points(user, now)
        ],
        "sites": [
            {
                "id": s.id,
                "name": s.name,
                "kind": s.kind,
                "lat": s.latitude,
                "lng": s.longitude,
                "radius_m": s.geofence_radius_m,
            }
            for s in sites(user)
        ],
    }


def tile_source(tile_url: str) -> str | None:
    """The CSP source that lets the page load the tiles of ``tile_url`` (None: same origin or
    nothing to add). ``{s}`` (Leaflet's subdomain) becomes a ``*.`` wildcard."""
    if not tile_url:
        return None
    parts = urlsplit(tile_url)
    if not parts.scheme or not parts.netloc:
        return None  # a path on this server: 'self' covers it
    host = parts.netloc.replace("{s}.", "*.")
    if "{" in host or "}" in host or any(c in host for c in " ;,'\""):
        return f"{parts.scheme}:"  # a template in the host name: allow the scheme only
    return f"{parts.scheme}://{host}"
