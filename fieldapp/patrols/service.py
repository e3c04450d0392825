"""Guard duty use cases: rostering, scanning a checkpoint, logging an incident, the gate
register, handing over, spot checks, and what the supervisor's board shows.

The record-applying functions (``apply_*``) serve the sync engine and take ``(ctx, payload)``;
they refuse with ``RuleViolation`` and never commit. Regulations come from
``fieldapp.rules.patrols``, ``fieldapp.rules.qrcodes`` and ``fieldapp.rules.geo``.
"""

import csv
import hashlib
import hmac
import io
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import lazy_gettext as _l

from fieldapp import jobs, push
from fieldapp.access import supervised_team_ids
from fieldapp.extensions import db
from fieldapp.models import Role, Site, SiteKind, Team, User, utcnow
from fieldapp.patrols.models import (
    EQUIPMENT_CHECK_LABELS,
    EQUIPMENT_CONDITION_LABELS,
    AlarmWithdrawal,
    Checkpoint,
    CheckpointScan,
    EquipmentCheck,
    EquipmentItem,
    GateEntry,
    GateExit,
    GuardProfile,
    Handover,
    Incident,
    IncidentResponse,
    IncidentSeverity,
    MissedSignIn,
    PatrolPlan,
    Post,
    RoundEndedEarly,
    Shift,
    ShiftSignIn,
    SpotCheck,
)
from fieldapp.push.models import PushEvent
from fieldapp.rules import patrols as rules
from fieldapp.rules.errors import RuleViolation
from fieldapp.rules.geo import geofence_check
from fieldapp.rules.qrcodes import QRCodeInvalid, sign_checkpoint, verify_checkpoint
from fieldapp.sync.engine import batch_cache, per_batch
from fieldapp.sync.messages import register_rule_messages

register_rule_messages(
    {
        "patrol.qr_malformed": _l("This is not a checkpoint code of fieldapp. Check the code."),
        "patrol.qr_bad_signature": _l(
            "This checkpoint code has been altered or forged. It does not count."
        ),
        "patrol.qr_wrong_site": _l(
            "This checkpoint code belongs to another site. Scan the codes of your own post."
        ),
        "patrol.unknown_checkpoint": _l("This checkpoint is no longer in use at this site."),
        "patrol.not_your_shift": _l("This shift is not yours."),
        "patrol.licence_invalid": _l(
            "This guard has no valid security licence for the shift and cannot be rostered."
        ),
        "patrol.shift_times": _l("The shift must end after it starts."),
        "patrol.shift_overlap": _l("This guard is already rostered at that time."),
        "patrol.not_your_site": _l("You do not supervise this site."),
        "patrol.visitor_name_required": _l("Enter the visitor's name."),
        "patrol.vehicle_required": _l("Enter the plate or the goods."),
        "patrol.unknown_entry": _l("This visitor is not in the register of your post."),
        "patrol.incoming_guard": _l("Choose the guard who takes over."),
        "patrol.plan_interval": _l(
            "Give either rounds every N minutes or rounds per shift, and a window no longer "
            "than the time between rounds."
        ),
        "patrol.plan_checkpoints": _l("Choose at least one checkpoint."),
        "patrol.early_end_reason": _l(
            "Checkpoints of this round are not scanned: say why you end the round early."
        ),
        "patrol.unknown_round": _l("This round is not in the patrol plan of the shift."),
        "patrol.not_major": _l("Only major incidents are acknowledged and attended."),
        "patrol.shift_started": _l(
            "This shift has already started: it can no longer be changed or removed."
        ),
        "patrol.shift_has_records": _l(
            "The guard has already recorded something for this shift: it cannot be changed."
        ),
        "patrol.equipment_returned": _l("This item has been returned: it is no longer issued."),
        "patrol.equipment_post": _l("Choose a post of this site."),
    }
)

# Who hears the guard-duty alarms (the preferences page offers them only to these roles).
MANAGERS = frozenset({Role.SUPERVISOR, Role.ADMIN})

ROUND_LATE = push.declare(
    push.Kind(
        name="patrol.round_late",
        label=_l("A patrol round is late"),
        title=_l("Round late: %(site)s"),
        body=_l("Round %(round)s (due %(due)s) has %(left)s checkpoints not scanned."),
        alarm=True,
        roles=MANAGERS,
    )
)
ROUND_MISSED = push.declare(
    push.Kind(
        name="patrol.round_missed",
        label=_l("A patrol round was missed"),
        title=_l("Round missed: %(site)s"),
        body=_l("Round %(round)s (due %(due)s) was not finished by %(guard)s."),
        alarm=True,
        roles=MANAGERS,
    )
)
MAJOR_INCIDENT = push.declare(
    push.Kind(
        name="patrol.major_incident",
        label=_l("A major incident at a guarded site"),
        title=_l("Major incident: %(site)s"),
        body=_l("%(type)s at %(place)s, reported by %(guard)s."),
        alarm=True,
        roles=MANAGERS,
    )
)
RAPID_RESPONSE = push.declare(
    push.Kind(
        name="patrol.rapid_response",
        label=_l("Rapid-response call-out to a major incident"),
        title=_l("Call-out: %(site)s"),
        body=_l("%(type)s at %(place)s. Acknowledge and go to the scene."),
        alarm=True,
        roles=frozenset({Role.GUARD}),
    )
)
HANDOVER_LATE = push.declare(
    push.Kind(
        name="patrol.handover_late",
        label=_l("A shift was taken over late"),
        title=_l("Late takeover: %(site)s"),
        body=_l("%(guard)s took over at %(actual)s, due %(due)s."),
        roles=MANAGERS,
    )
)

NOT_SIGNED_IN = push.declare(
    push.Kind(
        name="patrol.not_signed_in",
        label=_l("A guard has not signed in for a shift"),
        title=_l("Not signed in: %(site)s"),
        body=_l("%(guard)s has not signed in at %(post)s; the shift started at %(start)s."),
        alarm=True,
        roles=MANAGERS,
    )
)

TAKEOVER_MISSING = push.declare(
    push.Kind(
        name="patrol.takeover_missing",
        label=_l("A shift was not taken over"),
        title=_l("No takeover: %(site)s"),
        body=_l("%(incoming)s has not taken over %(post)s from %(guard)s, due %(due)s."),
        alarm=True,
        roles=MANAGERS,
    )
)

# A record synced late disproved an alarm: the supervisor hears it instead of a stale alarm.
SIGN_IN_SYNCED_LATE = push.declare(
    push.Kind(
        name="patrol.sign_in_synced_late",
        label=_l("A missed sign-in turned out to be a late sync"),
        title=_l("Alarm withdrawn: %(site)s"),
        body=_l("%(guard)s signed in at %(at)s, synced late."),
        roles=MANAGERS,
    )
)
ROUND_SYNCED_LATE = push.declare(
    push.Kind(
        name="patrol.round_synced_late",
        label=_l("A late or missed round turned out to be a late sync"),
        title=_l("Alarm withdrawn: %(site)s"),
        body=_l("%(guard)s finished round %(round)s at %(at)s, synced late."),
        roles=MANAGERS,
    )
)
TAKEOVER_SYNCED_LATE = push.declare(
    push.Kind(
        name="patrol.takeover_synced_late",
        label=_l("A missing takeover turned out to be a late sync"),
        title=_l("Alarm withdrawn: %(site)s"),
        body=_l("%(incoming)s took over %(post)s from %(guard)s at %(at)s, synced late."),
        roles=MANAGERS,
    )
)

INCIDENT_TYPES = {
    "theft": _l("Theft"),
    "fire": _l("Fire"),
    "accident": _l("Safety accident"),
    "intrusion": _l("Intrusion"),
    "dispute": _l("Dispute or fight"),
    "medical": _l("Medical emergency"),
    "other": _l("Other"),
}
SEVERITY_LABELS = {IncidentSeverity.MINOR: _l("Minor"), IncidentSeverity.MAJOR: _l("Major")}
# PAT-12: the five emergency steps, in the order the guard walks them.
EMERGENCY_STEPS = (
    ("step_report_at", _l("Reported")),
    ("step_disperse_at", _l("People evacuated or dispersed")),
    ("step_protect_at", _l("Scene protected")),
    ("step_rescue_at", _l("People in danger rescued")),
    ("step_stop_at", _l("Suspects stopped")),
)
ID_TYPES = {
    "id_card": _l("Resident ID card"),
    "passport": _l("Passport"),
    "driving_licence": _l("Driving licence"),
    "work_card": _l("Work card"),
    "other": _l("Other document"),
}
# PAT-07: the eight gate-duty prohibitions, the checklist of a spot check.
PROHIBITIONS = (
    ("v_off_post", _l("Left or slept on post")),
    ("v_reading", _l("Reading or watching TV")),
    ("v_drinking", _l("Drinking")),
    ("v_gambling", _l("Chess, cards or mahjong")),
    ("v_abuse", _l("Abused or insulted the public")),
    ("v_bribes", _l("Took bribes or property")),
    ("v_visitors", _l("Met friends or relatives on post")),
    ("v_secrets", _l("Leaked client secrets")),
)
# How long before its start a shift is "today's" on the guard's phone, and after its end.
SHIFT_LEAD = timedelta(hours=2)
SHIFT_TAIL = timedelta(hours=1)
# The rule clock looks back this far for shifts whose rounds may be late or missed.
CLOCK_LOOKBACK = timedelta(hours=24)
# A missed-round alarm waits while the guard's phone says it still holds records from the
# shift (a dead zone), at most this long after the shift end.
MISSED_HOLD = timedelta(hours=12)
# PAT-15: a guard not signed in this many minutes after the shift start is reported.
SIGN_IN_DEADLINE_MINUTES = 15


# ----- who sees what ------------------------------------------------------------------------


def qr_secret(org_id: int) -> bytes:
    """Per-organisation key for checkpoint codes, derived from the app's SECRET_KEY."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"fieldapp-checkpoint-qr:{org_id}".encode(), hashlib.sha256).digest()


def checkpoint_payload(checkpoint: Checkpoint) -> str:
    """The signed text printed as the checkpoint's QR code (and under it, for manual entry)."""
    return sign_checkpoint(qr_secret(checkpoint.org_id), str(checkpoint.site_id), checkpoint.code)


def supervised_sites(user: User) -> list[Site]:
    """Guarded sites of the teams the user supervises (every one of the org for an admin)."""
    query = db.select(Site).where(Site.org_id == user.org_id, Site.kind == SiteKind.GUARDED_POST)
    if user.role != Role.ADMIN:
        query = query.where(Site.team_id.in_(supervised_team_ids(user) or [-1]))
    return list(db.session.scalars(query.order_by(Site.name)))


def supervised_site(user: User, site_id: int) -> Site | None:
    site = db.session.get(Site, site_id)
    if site is None or site.org_id != user.org_id or site.kind != SiteKind.GUARDED_POST:
        return None
    if user.role == Role.ADMIN or site.team_id in supervised_team_ids(user):
        return site
    return None


def site_guards(site: Site) -> list[User]:
    """Guards of the site's team (who can be rostered there and take over a shift)."""
    return list(
        db.session.scalars(
            db.select(User)
            .where(
                User.org_id == site.org_id,
                User.role == Role.GUARD,
                User.active.is_(True),
                User.team_id == site.team_id,
            )
            .order_by(User.display_name)
        )
    )


def own_shift(user: User, shift_id) -> Shift:
    """A shift of the user's own (or the one they take over from, for a handover)."""
    shift = (
        per_batch(("patrols.shift", shift_id), lambda: db.session.get(Shift, shift_id))
        if isinstance(shift_id, int)
        else None
    )
    if shift is None or shift.org_id != user.org_id or shift.guard_id != user.id:
        raise RuleViolation("patrol.not_your_shift", "this shift is not the sender's")
    return shift


UPCOMING = timedelta(days=14)


def upcoming_shifts(user: User, shown: Shift | None, now: datetime) -> list[Shift]:
    """The guard's next shifts over two weeks, but the one the duty page shows: the duty page
    is kept offline with the day pack and fetched again when the roster changes, so the phone
    knows the coming shifts without a signal."""
    query = db.select(Shift).where(
        Shift.org_id == user.org_id,
        Shift.guard_id == user.id,
        Shift.starts_at > now,
        Shift.starts_at < now + UPCOMING,
    )
    if shown is not None:
        query = query.where(Shift.id != shown.id)
    return list(db.session.scalars(query.order_by(Shift.starts_at).limit(20)))


def current_shift(user: User, now: datetime | None = None) -> Shift | None:
    """The guard's shift on duty now, or the next one starting soon, or the one just ended."""
    now = now or utcnow()
    shifts = db.session.scalars(
        db.select(Shift)
        .where(
            Shift.org_id == user.org_id,
            Shift.guard_id == user.id,
            Shift.starts_at <= now + SHIFT_LEAD,
            Shift.ends_at >= now - SHIFT_TAIL,
        )
        .order_by(Shift.starts_at)
    ).all()
    for shift in shifts:
        if shift.starts_at <= now < shift.ends_at:
            return shift
    upcoming = [s for s in shifts if s.starts_at > now]
    return upcoming[0] if upcoming else (shifts[-1] if shifts else None)


# ----- rounds -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoundView:
    number: int
    round: rules.Round
    status: rules.RoundStatus


def plan_of(site_id: int) -> PatrolPlan | None:
    return per_batch(
        ("patrols.plan", site_id),
        lambda: db.session.scalar(db.select(PatrolPlan).where(PatrolPlan.site_id == site_id)),
    )


def rounds_of(shift: Shift, plan: PatrolPlan | None) -> list[rules.Round]:
    if plan is None or not plan.checkpoint_codes:
        return []
    rule_plan = rules.PatrolPlan(
        tuple(plan.checkpoint_codes), ordered=plan.ordered, window_minutes=plan.window_minutes
    )
    return rules.rounds_for_shift(
        rule_plan,
        shift.starts_at,
        shift.ends_at,
        every_minutes=plan.every_minutes,
        rounds_per_shift=None if plan.every_minutes else plan.rounds_per_shift,
    )


def shift_scans(shift_ids: list[int]) -> dict[int, list[rules.CheckpointScan]]:
    rows = db.session.execute(
        db.select(CheckpointScan.shift_id, Checkpoint.code, CheckpointScan.scanned_at)
        .join(Checkpoint, Checkpoint.id == CheckpointScan.checkpoint_id)
        .where(CheckpointScan.shift_id.in_(shift_ids or [-1]))
    ).all()
    scans: dict[int, list[rules.CheckpointScan]] = defaultdict(list)
    for shift_id, code, at in rows:
        scans[shift_id].append(rules.CheckpointScan(code, at))
    return scans


def round_views(shift: Shift, now: datetime, plan=None, scans=None) -> list[RoundView]:
    """Every round of the shift with its status at ``now``, judged by the scans' device time."""
    plan = plan if plan is not None else plan_of(shift.site_id)
    scans = scans if scans is not None else shift_scans([shift.id])[shift.id]
    return [
        RoundView(n, r, rules.round_status(r, scans, now))
        for n, r in enumerate(rounds_of(shift, plan), start=1)
    ]


def site_checkpoints(site_id: int, active_only: bool = True) -> list[Checkpoint]:
    query = db.select(Checkpoint).where(Checkpoint.site_id == site_id)
    if active_only:
        query = query.where(Checkpoint.active.is_(True))
    return list(db.session.scalars(query.order_by(Checkpoint.position, Checkpoint.id)))


# ----- set-up by the supervisor -------------------------------------------------------------


def rapid_responders(org_id: int) -> list[User]:
    """PAT-13: the active members of the organisation's rapid-response team."""
    return list(
        db.session.scalars(
            db.select(User)
            .join(GuardProfile, GuardProfile.user_id == User.id)
            .where(
                User.org_id == org_id,
                User.active.is_(True),
                GuardProfile.rapid_response.is_(True),
            )
            .order_by(User.display_name)
        )
    )


def is_rapid_responder(user: User) -> bool:
    profile = db.session.get(GuardProfile, user.id)
    return bool(profile and profile.rapid_response and profile.org_id == user.org_id)


def open_major_incidents(org_id: int) -> list[Incident]:
    """What the rapid-response team is called to: open major incidents of the organisation."""
    return list(
        db.session.scalars(
            db.select(Incident)
            .where(
                Incident.org_id == org_id,
                Incident.severity == IncidentSeverity.MAJOR,
                Incident.closed_at.is_(None),
            )
            .order_by(Incident.reported_at.desc())
        )
    )


def licence_valid(guard: User, on: date) -> bool:
    profile = db.session.get(GuardProfile, guard.id)
    return bool(
        profile
        and profile.licence_number.strip()
        and profile.licence_expires
        and profile.licence_expires >= on
    )


def save_licence(
    guard: User, number: str, expires: date | None, rapid_response: bool | None = None
) -> GuardProfile:
    profile = db.session.get(GuardProfile, guard.id)
    if profile is None:
        profile = GuardProfile(user_id=guard.id, org_id=guard.org_id, rapid_response=False)
        db.session.add(profile)
    profile.licence_number = number.strip()
    profile.licence_expires = expires
    if rapid_response is not None:
        profile.rapid_response = rapid_response
    profile.updated_at = utcnow()
    return profile


def _check_roster(
    site: Site,
    post: Post,
    guard: User,
    starts_at: datetime,
    ends_at: datetime,
    except_shift_id: int | None = None,
) -> None:
    """PAT-24 and the roster's sanity: times, same site, a valid licence, no double booking."""
    if ends_at <= starts_at:
        raise RuleViolation("patrol.shift_times", "shift ends before it starts")
    if guard.org_id != site.org_id or guard.role != Role.GUARD or post.site_id != site.id:
        raise RuleViolation("patrol.not_your_site", "guard or post of another site")
    last_day = ends_at.astimezone(ZoneInfo(site.timezone)).date()
    if not licence_valid(guard, last_day):
        raise RuleViolation("patrol.licence_invalid", "no valid security licence")
    query = db.select(Shift.id).where(
        Shift.guard_id == guard.id, Shift.starts_at < ends_at, Shift.ends_at > starts_at
    )
    if except_shift_id is not None:
        query = query.where(Shift.id != except_shift_id)
    if db.session.scalar(query):
        raise RuleViolation("patrol.shift_overlap", "guard already rostered then")


def roster_shift(
    supervisor: User, site: Site, post: Post, guard: User, starts_at: datetime, ends_at: datetime
) -> Shift:
    """Put a guard on a post (PAT-24: only with a licence valid for the whole shift)."""
    _check_roster(site, post, guard, starts_at, ends_at)
    shift = Shift(
        org_id=site.org_id,
        site_id=site.id,
        post_id=post.id,
        guard_id=guard.id,
        starts_at=starts_at,
        ends_at=ends_at,
        created_by_id=supervisor.id,
    )
    db.session.add(shift)
    db.session.flush()
    _publish_shift(shift, post, site)
    return shift


def supervised_post(user: User, post_id: int) -> Post | None:
    post = db.session.get(Post, post_id)
    if post is None or post.org_id != user.org_id:
        return None
    return post if supervised_site(user, post.site_id) else None


def supervised_checkpoint(user: User, checkpoint_id: int) -> Checkpoint | None:
    checkpoint = db.session.get(Checkpoint, checkpoint_id)
    if checkpoint is None or checkpoint.org_id != user.org_id:
        return None
    return checkpoint if supervised_site(user, checkpoint.site_id) else None


def supervised_shift(user: User, shift_id: int) -> Shift | None:
    shift = db.session.get(Shift, shift_id)
    if shift is None or shift.org_id != user.org_id:
        return None
    return shift if supervised_site(user, shift.site_id) else None


def update_post(post: Post, name: str, kind: str) -> Post:
    """Rename a post or change its kind (PAT-01); shifts and equipment stay with it."""
    post.name = name.strip()
    post.kind = kind
    return post


def update_checkpoint(checkpoint: Checkpoint, name: str, position: int, active: bool):
    """Rename, reorder or retire a checkpoint. The code stays: it is printed on the sheet and
    named by the plan; a retired checkpoint no longer counts when scanned."""
    checkpoint.name = name.strip()
    checkpoint.position = position
    checkpoint.active = active
    return checkpoint


def shift_has_records(shift: Shift) -> bool:
    """Whether a phone has already recorded something for the shift (a sign-in may come
    before the start)."""
    for model in (ShiftSignIn, CheckpointScan, Incident, Handover, MissedSignIn):
        if db.session.scalar(db.select(model.id).where(model.shift_id == shift.id).limit(1)):
            return True
    return False


def _changeable(shift: Shift, now: datetime) -> None:
    if shift.starts_at <= now:
        raise RuleViolation("patrol.shift_started", "shift already started")
    if shift_has_records(shift):
        raise RuleViolation("patrol.shift_has_records", "the guard has records for the shift")


def change_shift(
    shift: Shift,
    post: Post,
    guard: User,
    starts_at: datetime,
    ends_at: datetime,
    now: datetime | None = None,
) -> Shift:
    """Move a shift not yet started to another guard, post or time (same checks as rostering)."""
    _changeable(shift, now or utcnow())
    _check_roster(shift.site, post, guard, starts_at, ends_at, except_shift_id=shift.id)
    previous_guard_id = shift.guard_id
    shift.post_id, shift.guard_id = post.id, guard.id
    shift.starts_at, shift.ends_at = starts_at, ends_at
    if previous_guard_id != guard.id:  # the shift is no longer on the previous guard's phone
        _publish_shift(shift, post, shift.site, guard_id=previous_guard_id, deleted=True)
    _publish_shift(shift, post, shift.site)
    return shift


def remove_shift(shift: Shift, now: datetime | None = None) -> None:
    """Take a shift not yet started off the roster."""
    _changeable(shift, now or utcnow())
    _publish_shift(shift, shift.post, shift.site, deleted=True)
    db.session.delete(shift)


# The kind of change a guard's phone pulls for its shifts: the day pack's name for them, so a
# pulled change replaces (or removes) the day pack's entry, keyed by (kind, id).
SHIFT_CHANGE_KIND = "patrol_shifts"


def shift_for_phone(shift: Shift, post: Post, site: Site) -> dict:
    """A shift as the guard's phone keeps it (day pack and change feed alike)."""
    return {
        "id": shift.id,
        "site_id": site.id,
        "site": site.name,
        "post": post.name,
        "starts_at": shift.starts_at.isoformat(),
        "ends_at": shift.ends_at.isoformat(),
    }


def _publish_shift(
    shift: Shift, post: Post, site: Site, *, guard_id: int | None = None, deleted: bool = False
) -> None:
    """Tell the guard's phone (in the caller's transaction) that its shift changed."""
    from fieldapp.sync import changes  # here, not at the top: only the shift use cases publish

    changes.publish(
        shift.org_id,
        SHIFT_CHANGE_KIND,
        shift.id,
        None if deleted else shift_for_phone(shift, post, site),
        user_id=guard_id if guard_id is not None else shift.guard_id,
        deleted=deleted,
    )


def save_plan(
    site: Site,
    codes: list[str],
    ordered: bool,
    every_minutes: int | None,
    rounds_per_shift: int | None,
    window_minutes: int,
) -> PatrolPlan:
    known = {c.code for c in site_checkpoints(site.id)}
    codes = [c for c in codes if c in known]
    if not codes:
        raise RuleViolation("patrol.plan_checkpoints", "no checkpoints")
    if (every_minutes is None) == (rounds_per_shift is None) or window_minutes <= 0:
        raise RuleViolation("patrol.plan_interval", "interval or window wrong")
    if every_minutes is not None and window_minutes > every_minutes:
        raise RuleViolation("patrol.plan_interval", "window longer than interval")
    plan = plan_of(site.id)
    if plan is None:
        plan = PatrolPlan(org_id=site.org_id, site_id=site.id)
        db.session.add(plan)
    plan.checkpoint_codes = codes
    plan.ordered = ordered
    plan.every_minutes = every_minutes
    plan.rounds_per_shift = rounds_per_shift
    plan.window_minutes = window_minutes
    plan.updated_at = utcnow()
    return plan


def local_day(site: Site, day: date) -> tuple[datetime, datetime]:
    return rules.local_day_bounds(day, site.timezone)


def roster(site: Site, day: date) -> tuple[list[Shift], list[tuple[datetime, datetime]]]:
    """The shifts touching the site's local day, and the uncovered periods (PAT-02)."""
    start, end = local_day(site, day)
    shifts = list(
        db.session.scalars(
            db.select(Shift)
            .where(Shift.site_id == site.id, Shift.starts_at < end, Shift.ends_at > start)
            .order_by(Shift.starts_at)
        )
    )
    gaps = rules.coverage_gaps([(s.starts_at, s.ends_at) for s in shifts], start, end)
    return shifts, gaps


def shift_from_local(site: Site, day: date, start: time, end: time) -> tuple[datetime, datetime]:
    return rules.shift_bounds(day, start, end, site.timezone)


# ----- facts from the phone -----------------------------------------------------------------


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def fence_distance(site: Site, lat, lon, accuracy) -> tuple[int | None, bool]:
    """Distance to the site and whether that is outside the fence (no fix: flagged)."""
    if lat is None or lon is None or site.latitude is None or site.longitude is None:
        return None, lat is None or lon is None
    result = geofence_check(
        site.latitude, site.longitude, site.geofence_radius_m, lat, lon, accuracy
    )
    return result.distance_m, not result.inside


def position_fields(site: Site, payload) -> dict:
    """The columns of a record made at a GPS position: where, how sure, and the fence check."""
    distance, outside = fence_distance(site, payload.latitude, payload.longitude, payload.accuracy)
    return {
        "latitude": payload.latitude,
        "longitude": payload.longitude,
        "accuracy_m": payload.accuracy,
        "distance_m": distance,
        "outside_geofence": outside,
    }


def apply_sign_in(ctx, payload) -> ShiftSignIn:
    """PAT-15: sign in (or out) at the post; outside the geofence is kept, with the distance."""
    shift = own_shift(ctx.user, payload.shift_id)
    record = ShiftSignIn(
        id=payload.id,
        org_id=shift.org_id,
        shift_id=shift.id,
        guard_id=ctx.user.id,
        action=payload.action,
        at=_utc(ctx.device_time),
        received_at=ctx.received_at,
        **position_fields(shift.site, payload),
    )
    db.session.add(record)
    if record.action == "in":
        _withdraw_missed_sign_in(shift, record)
    return record


def _local_hhmm(site: Site, at: datetime) -> str:
    return at.astimezone(ZoneInfo(site.timezone)).strftime("%H:%M")


def _alarm_raised(org_id: int, dedupe_key: str) -> bool:
    return bool(
        db.session.scalar(
            db.select(PushEvent.id).where(
                PushEvent.org_id == org_id, PushEvent.dedupe_key == dedupe_key
            )
        )
    )


def _withdrawn(shift_id: int, what: str, round_number: int = 0) -> bool:
    return bool(
        db.session.scalar(
            db.select(AlarmWithdrawal.id).where(
                AlarmWithdrawal.shift_id == shift_id,
                AlarmWithdrawal.what == what,
                AlarmWithdrawal.round_number == round_number,
            )
        )
    )


def _withdraw(shift: Shift, what: str, alarm_key: str, round_number: int = 0, **fields):
    """Record that a late-synced fact disproved an alarm, and take the alarm off the inbox."""
    withdrawal = AlarmWithdrawal(
        org_id=shift.org_id, shift_id=shift.id, what=what, round_number=round_number, **fields
    )
    db.session.add(withdrawal)
    cache = batch_cache()  # a sync push: keep its set of the shift's withdrawals up to date
    withdrawn = cache.get(("patrols.withdrawn", shift.id)) if cache is not None else None
    if withdrawn is not None:
        withdrawn.add((what, round_number))
    push.withdraw(shift.org_id, alarm_key)
    return withdrawal


def _tell_supervisors(kind, shift: Shift, dedupe_key: str, **params) -> None:
    """The non-alarm follow-up that replaces a withdrawn alarm."""
    push.notify(
        kind,
        user_ids=_site_supervisor_ids(shift.site),
        org_id=shift.org_id,
        url="/patrols/board",
        params={"site": shift.site.name, "guard": shift.guard.display_name, **params},
        dedupe_key=dedupe_key,
    )


def _withdraw_missed_sign_in(shift: Shift, sign_in: ShiftSignIn) -> AlarmWithdrawal | None:
    """PAT-15: a sign-in made before the deadline but synced after the rule clock recorded the
    shift as not signed in withdraws that record; the supervisor hears it if alarmed."""
    missed = db.session.scalar(db.select(MissedSignIn).where(MissedSignIn.shift_id == shift.id))
    if missed is None or sign_in.at > missed.deadline or _withdrawn(shift.id, "sign_in"):
        return None
    alarm_key = f"not-signed-in:{shift.id}"
    alarmed = _alarm_raised(shift.org_id, alarm_key)
    withdrawal = _withdraw(
        shift,
        "sign_in",
        alarm_key,
        missed_sign_in_id=missed.id,
        evidence_id=sign_in.id,
        evidence_at=sign_in.at,
        reason=(
            f"signed in at {sign_in.at.isoformat()} (device time), before the deadline "
            f"{missed.deadline.isoformat()}; synced at {sign_in.received_at.isoformat()}"
        ),
        withdrawn_at=sign_in.received_at,
    )
    if alarmed:
        _tell_supervisors(
            SIGN_IN_SYNCED_LATE,
            shift,
            f"sign-in-synced-late:{shift.id}",
            at=_local_hhmm(shift.site, sign_in.at),
        )
    return withdrawal


def _shift_rounds(shift: Shift) -> list[rules.Round]:
    return per_batch(("patrols.rounds", shift.id), lambda: rounds_of(shift, plan_of(shift.site_id)))


def _round_alarms_raised(shift: Shift) -> set[str]:
    """The dedupe keys of the round alarms raised about the shift (for one sync push)."""

    def load() -> set[str]:
        keys = [
            f"{key}:{shift.id}:{number}"
            for number in range(1, len(_shift_rounds(shift)) + 1)
            for key in ("round-missed", "round-late")
        ]
        if not keys:
            return set()
        return set(
            db.session.scalars(
                db.select(PushEvent.dedupe_key).where(
                    PushEvent.org_id == shift.org_id, PushEvent.dedupe_key.in_(keys)
                )
            )
        )

    return per_batch(("patrols.round_alarms", shift.id), load)


def _batch_shift_scans(
    shift: Shift, scan: CheckpointScan, code: str, load: bool = True
) -> list | None:
    """In a sync push: the shift's scans (as ``shift_scans`` reads them) including ``scan``.

    Read once per batch; every scan the batch adds after that is appended here as it is
    applied instead of being flushed and read back for every scan. A rolled-back savepoint
    empties the batch cache (``engine.batch_cache``), so nothing rolled back stays in it.
    With ``load=False`` the scan is only added to a list read already (None if there is none).
    """
    cache = batch_cache()
    key = ("patrols.shift_scans", shift.id)
    entry = cache.get(key)
    if entry is None:
        if not load:
            return None
        rows = db.session.execute(
            db.select(CheckpointScan.id, Checkpoint.code, CheckpointScan.scanned_at)
            .join(Checkpoint, Checkpoint.id == CheckpointScan.checkpoint_id)
            .where(CheckpointScan.shift_id == shift.id)
        ).all()
        entry = cache[key] = (
            {row.id for row in rows},
            [rules.CheckpointScan(row.code, row.scanned_at) for row in rows],
        )
    ids, scans = entry
    if scan.id not in ids:
        ids.add(scan.id)
        scans.append(rules.CheckpointScan(code, scan.scanned_at))
    return scans


def _batch_withdrawn(shift: Shift) -> set[tuple[str, int]] | None:
    """In a sync push: (what, round number) of the shift's alarm withdrawals, read once."""
    if batch_cache() is None:
        return None
    return per_batch(
        ("patrols.withdrawn", shift.id),
        lambda: {
            (row.what, row.round_number)
            for row in db.session.execute(
                db.select(AlarmWithdrawal.what, AlarmWithdrawal.round_number).where(
                    AlarmWithdrawal.shift_id == shift.id
                )
            )
        },
    )


def _withdraw_round_alarms(
    shift: Shift, scan: CheckpointScan, code: str | None = None
) -> list[AlarmWithdrawal]:
    """PAT-03: scans synced late that complete a round the rule clock alarmed about.

    A "missed" alarm is withdrawn once the round is done by the scans' device time (even late);
    a "late" alarm only when the round was done inside its window. Judged at arrival time.
    ``code`` is the scanned checkpoint's code (it lets a sync push keep the shift's scans in
    memory for the batch instead of reading them back for every scan).
    """
    if code is not None and batch_cache() is not None:
        _batch_shift_scans(shift, scan, code, load=False)  # it counts for any round's status
    if scan.round_number is None:
        return []
    # Most scans arrive with no alarm about their round: one indexed lookup settles that, and
    # the round's status (every scan of the shift) is worked out only when there is one.
    keys = [f"{key}:{shift.id}:{scan.round_number}" for key in ("round-missed", "round-late")]
    if batch_cache() is not None and scan.round_number <= len(_shift_rounds(shift)) <= 200:
        # A sync push: the alarms about any round of the shift, read once for the batch (only
        # the rule clock raises them, no record type does).
        raised = _round_alarms_raised(shift)
        if not any(key in raised for key in keys):
            return []
        if code is not None:
            return _withdraw_round_alarms_in_batch(shift, scan, code, raised)
    else:
        raised = db.select(PushEvent.id).where(
            PushEvent.org_id == shift.org_id, PushEvent.dedupe_key.in_(keys)
        )
        if db.session.scalar(raised.limit(1)) is None:
            return []
    views = round_views(shift, scan.received_at)
    if not 1 <= scan.round_number <= len(views):
        return []
    view = views[scan.round_number - 1]
    if view.status.state != rules.RoundState.DONE:
        return []
    pending = []
    for what, key in (("round_missed", "round-missed"), ("round_late", "round-late")):
        if _alarm_stays(what, view.status):
            continue  # no need to look the alarm up
        alarm_key = f"{key}:{shift.id}:{view.number}"
        if _alarm_raised(shift.org_id, alarm_key) and not _withdrawn(shift.id, what, view.number):
            pending.append((what, alarm_key))
    return _withdraw_for_done_round(shift, scan, view.number, view.status, pending)


def _alarm_stays(what: str, status) -> bool:
    """A "late" alarm about a done round stays when the round really was finished after its
    window; a "missed" one never does."""
    return what == "round_late" and status.late


def _withdraw_for_done_round(
    shift: Shift, scan: CheckpointScan, number: int, status, pending: list[tuple[str, str]]
) -> list[AlarmWithdrawal]:
    """Withdraw the ``pending`` (what, alarm key) alarms of round ``number``, which ``scan``
    finished (``status`` is DONE): a late alarm stays when the round really was late. The
    supervisors hear once that the round was done and only synced late."""
    completed = status.completed_at
    result = []
    for what, alarm_key in pending:
        if _alarm_stays(what, status):
            continue
        withdrawal = _withdraw(
            shift,
            what,
            alarm_key,
            round_number=number,
            evidence_id=scan.id,
            evidence_at=completed,
            reason=(
                f"round {number} finished at {completed.isoformat()} (device time); "
                f"last scan synced at {scan.received_at.isoformat()}"
            ),
            withdrawn_at=scan.received_at,
        )
        result.append(withdrawal)
    if result:
        _tell_supervisors(
            ROUND_SYNCED_LATE,
            shift,
            f"round-synced-late:{shift.id}:{number}",
            round=number,
            at=_local_hhmm(shift.site, completed),
        )
    return result


def _withdraw_round_alarms_in_batch(
    shift: Shift, scan: CheckpointScan, code: str, raised: set[str]
) -> list[AlarmWithdrawal]:
    """``_withdraw_round_alarms`` in a sync push, once an alarm about the scan's round exists.

    The same decisions on the same facts, read once per batch instead of once per scan: the
    alarms raised (``raised``), the withdrawals made (``_batch_withdrawn``, kept up to date by
    ``_withdraw``) and the shift's scans (``_batch_shift_scans``). Only the scan's own round is
    judged (``round_views`` judges them all and the others were not looked at).
    """
    rounds = _shift_rounds(shift)
    number = scan.round_number
    if not 1 <= number <= len(rounds):
        return []
    withdrawn = _batch_withdrawn(shift)
    pending = [
        (what, f"{key}:{shift.id}:{number}")
        for what, key in (("round_missed", "round-missed"), ("round_late", "round-late"))
        if f"{key}:{shift.id}:{number}" in raised and (what, number) not in withdrawn
    ]
    scans = _batch_shift_scans(shift, scan, code)
    if not pending:  # every alarm about this round is withdrawn already: nothing can change
        return []
    status = rules.round_status(rounds[number - 1], scans, scan.received_at)
    if status.state != rules.RoundState.DONE:
        return []
    return _withdraw_for_done_round(shift, scan, number, status, pending)


def _withdraw_missing_takeover(shift: Shift, handover: Handover, incoming: User) -> None:
    """PAT-10: a handover made in time but synced after the "no takeover" alarm withdraws it."""
    alarm_key = f"takeover-missing:{shift.id}"
    if not _alarm_raised(shift.org_id, alarm_key) or _withdrawn(shift.id, "takeover"):
        return
    _withdraw(
        shift,
        "takeover",
        alarm_key,
        evidence_id=handover.id,
        evidence_at=handover.actual_at,
        reason=(
            f"handed over at {handover.actual_at.isoformat()} (device time), in time; "
            f"synced at {handover.received_at.isoformat()}"
        ),
        withdrawn_at=handover.received_at,
    )
    _tell_supervisors(
        TAKEOVER_SYNCED_LATE,
        shift,
        f"takeover-synced-late:{shift.id}",
        post=shift.post.name,
        incoming=incoming.display_name,
        at=_local_hhmm(shift.site, handover.actual_at),
    )


def alarm_withdrawals(shift_ids: list[int]) -> dict[tuple[int, str, int], AlarmWithdrawal]:
    rows = db.session.scalars(
        db.select(AlarmWithdrawal).where(AlarmWithdrawal.shift_id.in_(shift_ids or [-1]))
    )
    return {(row.shift_id, row.what, row.round_number): row for row in rows}


def _verified_checkpoint(shift: Shift, code: str) -> Checkpoint:
    text = "".join(code.split())
    try:
        verified = verify_checkpoint(qr_secret(shift.org_id), text, str(shift.site_id))
    except QRCodeInvalid as invalid:
        raise RuleViolation(f"patrol.qr_{invalid.code}", str(invalid)) from None
    if batch_cache() is not None:  # a sync push: the site's active checkpoints, read once
        checkpoint = per_batch(
            ("patrols.checkpoints", shift.site_id),
            lambda: {c.code: c for c in site_checkpoints(shift.site_id)},
        ).get(verified.checkpoint_id)
    else:
        checkpoint = db.session.scalar(
            db.select(Checkpoint).where(
                Checkpoint.site_id == shift.site_id,
                Checkpoint.code == verified.checkpoint_id,
                Checkpoint.active.is_(True),
            )
        )
    if checkpoint is None:
        raise RuleViolation("patrol.unknown_checkpoint", "checkpoint retired or unknown")
    return checkpoint


def apply_scan(ctx, payload) -> CheckpointScan:
    """PAT-03: a checkpoint scanned; the code must be a genuine one of the shift's site.

    The scan is timed by the phone (``ctx.device_time``): a round walked offline counts for
    the round it was walked in, however late the record arrives.
    """
    shift = own_shift(ctx.user, payload.shift_id)
    checkpoint = _verified_checkpoint(shift, payload.code)
    at = _utc(ctx.device_time)
    scan = CheckpointScan(
        id=payload.id,
        org_id=shift.org_id,
        shift_id=shift.id,
        checkpoint_id=checkpoint.id,
        guard_id=ctx.user.id,
        round_number=rules.round_number_at(_shift_rounds(shift), at),
        scanned_at=at,
        received_at=ctx.received_at,
        manual=payload.manual,
        latitude=payload.latitude,
        longitude=payload.longitude,
        note=payload.note or "",
        hazard=payload.hazard,
        photo=payload.photo,
    )
    db.session.add(scan)
    _withdraw_round_alarms(shift, scan, checkpoint.code)
    return scan


def apply_round_ended_early(ctx, payload) -> RoundEndedEarly:
    """A round closed before all its checkpoints were scanned: the reason is required.

    What is left is judged at the phone's time from the scans the server has (the phone sends
    its scans before this record, in the order they were made).
    """
    shift = own_shift(ctx.user, payload.shift_id)
    at = _utc(ctx.device_time)
    views = round_views(shift, at)
    if not 1 <= payload.round_number <= len(views):
        raise RuleViolation("patrol.unknown_round", "no such round in the shift")
    remaining = list(views[payload.round_number - 1].status.remaining)
    reason = (payload.reason or "").strip()
    if remaining and not reason:
        raise RuleViolation("patrol.early_end_reason", "round ended early without a reason")
    record = RoundEndedEarly(
        id=payload.id,
        org_id=shift.org_id,
        shift_id=shift.id,
        guard_id=ctx.user.id,
        round_number=payload.round_number,
        reason=reason,
        remaining=remaining,
        ended_at=at,
        received_at=ctx.received_at,
    )
    db.session.add(record)
    return record


def rounds_ended_early(shift_ids: list[int]) -> dict[tuple[int, int], RoundEndedEarly]:
    rows = db.session.scalars(
        db.select(RoundEndedEarly)
        .where(RoundEndedEarly.shift_id.in_(shift_ids or [-1]))
        .order_by(RoundEndedEarly.ended_at)
    )
    return {(row.shift_id, row.round_number): row for row in rows}


def _site_supervisor_ids(site: Site) -> list[int]:
    team = db.session.get(Team, site.team_id) if site.team_id else None
    return [team.supervisor_id] if team and team.supervisor_id else []


def apply_incident(ctx, payload) -> Incident:
    """PAT-12/13: an incident with its emergency steps; a major one alarms the supervisor."""
    shift = own_shift(ctx.user, payload.shift_id)
    site = shift.site
    voluntary = {"yes": True, "no": False}.get(payload.opened_voluntarily or "")
    incident = Incident(
        id=payload.id,
        org_id=shift.org_id,
        site_id=site.id,
        shift_id=shift.id,
        reported_by_id=ctx.user.id,
        incident_type=payload.incident_type,
        severity=payload.severity,
        place=payload.place or "",
        description=payload.description or "",
        people=payload.people or "",
        opened_voluntarily=voluntary,
        photos=list(payload.photos or []),
        reported_at=_utc(ctx.device_time),
        received_at=ctx.received_at,
        **{
            name: _utc(getattr(payload, name)) if getattr(payload, name) else None
            for name, _label in EMERGENCY_STEPS
        },
    )
    db.session.add(incident)
    if payload.severity == IncidentSeverity.MAJOR:
        push.notify(
            MAJOR_INCIDENT,
            user_ids=_site_supervisor_ids(site),
            org_id=site.org_id,
            url=f"/patrols/incidents/{incident.id}",
            params={
                "site": site.name,
                "type": str(INCIDENT_TYPES.get(payload.incident_type, payload.incident_type)),
                "place": incident.place or site.name,
                "guard": ctx.user.display_name,
            },
            dedupe_key=f"incident-major:{incident.id}",
        )
        # PAT-13: the whole rapid-response team is called out, to acknowledge and attend.
        team = [u.id for u in rapid_responders(site.org_id) if u.id != ctx.user.id]
        if team:
            push.notify(
                RAPID_RESPONSE,
                user_ids=team,
                org_id=site.org_id,
                url=f"/patrols/incidents/{incident.id}",
                params={
                    "site": site.name,
                    "type": str(INCIDENT_TYPES.get(payload.incident_type, payload.incident_type)),
                    "place": incident.place or site.name,
                },
                dedupe_key=f"incident-rapid:{incident.id}",
            )
    return incident


push.forget_once_stored(Incident.id, "incident-major", "incident-rapid")


def incident_responses(incident_ids: list[str]) -> dict[str, list[IncidentResponse]]:
    """PAT-13: who acknowledged each incident and when they arrived, first to answer first."""
    rows = db.session.scalars(
        db.select(IncidentResponse)
        .where(IncidentResponse.incident_id.in_(incident_ids or [""]))
        .order_by(IncidentResponse.acknowledged_at, IncidentResponse.id)
    )
    result: dict[str, list[IncidentResponse]] = defaultdict(list)
    for row in rows:
        result[row.incident_id].append(row)
    return result


def respond_to_incident(
    user: User, incident: Incident, arrived: bool, now: datetime | None = None
) -> IncidentResponse:
    """PAT-13: acknowledge a major incident, or record arriving at the scene (which also
    acknowledges it). Pressing a button again keeps the first time."""
    if incident.severity != IncidentSeverity.MAJOR:
        raise RuleViolation("patrol.not_major", "only major incidents are answered")
    now = now or utcnow()
    response = db.session.scalar(
        db.select(IncidentResponse).where(
            IncidentResponse.incident_id == incident.id, IncidentResponse.user_id == user.id
        )
    )
    if response is None:
        response = IncidentResponse(
            org_id=incident.org_id, incident_id=incident.id, user_id=user.id, acknowledged_at=now
        )
        db.session.add(response)
    if arrived and response.arrived_at is None:
        response.arrived_at = now
    return response


def response_minutes(incident: Incident, response: IncidentResponse) -> int | None:
    """Minutes from the guard's report to the arrival at the scene (PAT-13)."""
    if response.arrived_at is None:
        return None
    return max(0, round((response.arrived_at - incident.reported_at).total_seconds() / 60))


def apply_gate_entry(ctx, payload) -> GateEntry:
    """PAT-04/05: a visitor registered at the gate, or goods/a vehicle in or out."""
    shift = own_shift(ctx.user, payload.shift_id)
    if payload.entry_kind == "visitor" and not (payload.name or "").strip():
        raise RuleViolation("patrol.visitor_name_required", "visitor without a name")
    if payload.entry_kind == "vehicle" and not ((payload.plate or "") + (payload.goods or "")):
        raise RuleViolation("patrol.vehicle_required", "vehicle without plate or goods")
    fields = payload.model_dump(exclude={"id", "shift_id"})
    entry = GateEntry(
        id=payload.id,
        org_id=shift.org_id,
        site_id=shift.site_id,
        guard_id=ctx.user.id,
        at=_utc(ctx.device_time),
        received_at=ctx.received_at,
        **{k: (v if v is not None else "") for k, v in fields.items()},
    )
    db.session.add(entry)
    return entry


def apply_gate_exit(ctx, payload) -> GateExit:
    """A visitor left: the time out of their register line."""
    shift = own_shift(ctx.user, payload.shift_id)
    entry = db.session.get(GateEntry, payload.entry_id)
    if entry is None or entry.org_id != ctx.user.org_id or entry.site_id != shift.site_id:
        raise RuleViolation("patrol.unknown_entry", "no such visitor at this post")
    record = GateExit(
        id=payload.id,
        org_id=entry.org_id,
        entry_id=entry.id,
        guard_id=ctx.user.id,
        at=_utc(ctx.device_time),
    )
    db.session.add(record)
    # A second exit of the entry breaks GateExit's unique entry_id, and the engine's savepoint
    # rolls this back with it, so the first exit's time stays.
    entry.exited_at = record.at
    return record


def apply_handover(ctx, payload) -> Handover:
    """PAT-10: the outgoing guard hands the post to the incoming one; both sign.

    Sent from the outgoing guard's phone (their shift). A takeover later than the grace
    after the shift end tells the squad's supervisor.
    """
    shift = own_shift(ctx.user, payload.shift_id)
    incoming = db.session.get(User, payload.incoming_guard_id)
    if (
        incoming is None
        or incoming.org_id != shift.org_id
        or incoming.role != Role.GUARD
        or incoming.id == ctx.user.id
    ):
        raise RuleViolation("patrol.incoming_guard", "incoming guard not valid")
    actual = _utc(ctx.device_time)
    late = rules.handover_late(shift.ends_at, actual)
    handover = Handover(
        id=payload.id,
        org_id=shift.org_id,
        site_id=shift.site_id,
        shift_id=shift.id,
        outgoing_guard_id=ctx.user.id,
        incoming_guard_id=incoming.id,
        scheduled_at=shift.ends_at,
        actual_at=actual,
        late=late,
        equipment=payload.equipment or "",
        open_incidents=payload.open_incidents or "",
        visitors_inside=payload.visitors_inside or "",
        notes=payload.notes or "",
        outgoing_signature=payload.outgoing_signature,
        incoming_signature=payload.incoming_signature,
        received_at=ctx.received_at,
    )
    db.session.add(handover)
    conditions = payload.equipment_conditions() if hasattr(payload, "equipment_conditions") else {}
    if conditions:
        db.session.flush()
        for item in post_equipment(shift.post_id):  # items no longer issued are skipped
            if item.id in conditions:
                _equipment_check(
                    item, "handover", conditions[item.id], ctx.user, actual, handover_id=handover.id
                )
    if not late:
        _withdraw_missing_takeover(shift, handover, incoming)
    if late:
        push.notify(
            HANDOVER_LATE,
            user_ids=_site_supervisor_ids(shift.site),
            org_id=shift.org_id,
            url="/patrols/board",
            params={
                "site": shift.site.name,
                "guard": incoming.display_name,
                "actual": actual,
                "due": shift.ends_at,
            },
            dedupe_key=f"handover-late:{shift.id}",
        )
    return handover


def apply_spot_check(ctx, payload) -> SpotCheck:
    """PAT-08: an unannounced post inspection with the PAT-07 checklist."""
    site = supervised_site(ctx.user, payload.site_id)
    if site is None:
        raise RuleViolation("patrol.not_your_site", "site not supervised by the sender")
    guard = db.session.get(User, payload.guard_id) if payload.guard_id else None
    if guard is not None and (guard.org_id != site.org_id or guard.role != Role.GUARD):
        guard = None
    distance, outside = fence_distance(site, payload.latitude, payload.longitude, payload.accuracy)
    check = SpotCheck(
        id=payload.id,
        org_id=site.org_id,
        site_id=site.id,
        supervisor_id=ctx.user.id,
        guard_id=guard.id if guard else None,
        at=_utc(ctx.device_time),
        received_at=ctx.received_at,
        latitude=payload.latitude,
        longitude=payload.longitude,
        distance_m=distance,
        outside_geofence=outside,
        guard_present=payload.guard_present,
        in_uniform=payload.in_uniform,
        violations=[name for name, _label in PROHIBITIONS if getattr(payload, name)],
        findings=payload.findings or "",
        photo=payload.photo,
    )
    db.session.add(check)
    return check


# ----- the equipment register (PAT-23) ------------------------------------------------------


def supervised_equipment(user: User, item_id: int) -> EquipmentItem | None:
    item = db.session.get(EquipmentItem, item_id)
    if item is None or item.org_id != user.org_id:
        return None
    return item if supervised_site(user, item.site_id) else None


def site_equipment(site_id: int, include_returned: bool = True) -> list[EquipmentItem]:
    query = db.select(EquipmentItem).where(EquipmentItem.site_id == site_id)
    if not include_returned:
        query = query.where(EquipmentItem.returned_at.is_(None))
    return list(
        db.session.scalars(
            query.order_by(
                EquipmentItem.returned_at.is_not(None),
                EquipmentItem.post_id,
                EquipmentItem.kind,
                EquipmentItem.id,
            )
        )
    )


def post_equipment(post_id: int) -> list[EquipmentItem]:
    """Kit issued for the post and not returned: what a handover checks."""
    return list(
        db.session.scalars(
            db.select(EquipmentItem)
            .where(EquipmentItem.post_id == post_id, EquipmentItem.returned_at.is_(None))
            .order_by(EquipmentItem.kind, EquipmentItem.id)
        )
    )


def equipment_history(item_id: int) -> list[EquipmentCheck]:
    return list(
        db.session.scalars(
            db.select(EquipmentCheck)
            .where(EquipmentCheck.equipment_id == item_id)
            .order_by(EquipmentCheck.at.desc(), EquipmentCheck.id)
        )
    )


def latest_checks(item_ids: list[int]) -> dict[int, EquipmentCheck]:
    """The last check of each item (its present condition)."""
    latest: dict[int, EquipmentCheck] = {}
    for check in db.session.scalars(
        db.select(EquipmentCheck)
        .where(EquipmentCheck.equipment_id.in_(item_ids or [-1]))
        .order_by(EquipmentCheck.at)
    ):
        latest[check.equipment_id] = check
    return latest


def _equipment_check(item, check_kind, condition, by, at, notes="", handover_id=None):
    check = EquipmentCheck(
        id=str(uuid.uuid4()),
        org_id=item.org_id,
        equipment_id=item.id,
        check_kind=check_kind,
        condition=condition,
        at=at,
        by_id=by.id,
        handover_id=handover_id,
        notes=(notes or "").strip(),
    )
    db.session.add(check)
    return check


def issue_equipment(
    supervisor: User,
    site: Site,
    post: Post,
    guard: User | None,
    kind: str,
    label: str,
    value_fen: int | None,
    now: datetime | None = None,
) -> EquipmentItem:
    """PAT-23: issue an item for a post (and, for personal kit, to one guard of the site)."""
    if post.site_id != site.id:
        raise RuleViolation("patrol.equipment_post", "post of another site")
    if guard is not None and (guard.org_id != site.org_id or guard.role != Role.GUARD):
        raise RuleViolation("patrol.not_your_site", "guard of another organisation")
    now = now or utcnow()
    item = EquipmentItem(
        org_id=site.org_id,
        site_id=site.id,
        post_id=post.id,
        guard_id=guard.id if guard else None,
        kind=kind,
        label=label.strip(),
        value_fen=value_fen,
        issued_at=now,
        issued_by_id=supervisor.id,
    )
    db.session.add(item)
    db.session.flush()
    _equipment_check(item, "issue", "ok", supervisor, now)
    return item


def record_equipment_check(
    user: User,
    item: EquipmentItem,
    check_kind: str,
    condition: str,
    notes: str = "",
    now: datetime | None = None,
) -> EquipmentCheck:
    """PAT-23: a periodic inspection, maintenance, or the return of an item (on leaving)."""
    if item.returned_at is not None:
        raise RuleViolation("patrol.equipment_returned", "item already returned")
    now = now or utcnow()
    check = _equipment_check(item, check_kind, condition, user, now, notes)
    if check_kind == "returned":
        item.returned_at = now
    return check


def equipment_charge_fen(item: EquipmentItem, latest: EquipmentCheck | None) -> int:
    """PAT-23: damaged or lost public property is charged at cost (0 when in order)."""
    if latest is None or latest.condition == "ok" or not item.value_fen:
        return 0
    return item.value_fen


EQUIPMENT_CSV_HEADER = (
    _l("Post"),
    _l("Item"),
    _l("Description"),
    _l("Guard"),
    _l("Issued"),
    _l("Last check"),
    _l("Condition"),
    _l("Returned"),
    _l("Value (yuan)"),
    _l("Charge (yuan)"),
)


def _yuan(fen: int | None) -> str:
    return "" if fen is None else f"{fen / 100:.2f}"


def equipment_rows(site: Site) -> list[tuple]:
    """The register as rows, times in the site's zone (the CSV export)."""
    tz = ZoneInfo(site.timezone)
    items = site_equipment(site.id)
    latest = latest_checks([i.id for i in items])
    rows = []
    for item in items:
        check = latest.get(item.id)
        rows.append(
            (
                item.post.name,
                item.kind_label,
                item.label,
                item.guard.display_name if item.guard else "",
                item.issued_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                (
                    f"{check.at.astimezone(tz):%Y-%m-%d %H:%M} "
                    f"{EQUIPMENT_CHECK_LABELS.get(check.check_kind, check.check_kind)}"
                    if check
                    else ""
                ),
                str(EQUIPMENT_CONDITION_LABELS.get(check.condition, check.condition))
                if check
                else "",
                item.returned_at.astimezone(tz).strftime("%Y-%m-%d %H:%M")
                if item.returned_at
                else "",
                _yuan(item.value_fen),
                _yuan(equipment_charge_fen(item, check)) if item.value_fen else "",
            )
        )
    return rows


def to_csv(header, rows) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([str(h) for h in header])
    writer.writerows(rows)
    return "\ufeff" + buffer.getvalue()  # Excel opens UTF-8 Chinese only with the BOM


# ----- what the pages show ------------------------------------------------------------------


def visitors_inside(site_id: int) -> list[GateEntry]:
    """Visitors registered in at the site who have not been let out (PAT-04, handover).

    Reads only the entries still open (``ix_patrol_gate_entry_inside``), not the register's
    whole history: ``exited_at`` is set with the exit.
    """
    return list(
        db.session.scalars(
            db.select(GateEntry)
            .where(
                GateEntry.site_id == site_id,
                GateEntry.entry_kind == "visitor",
                GateEntry.exited_at.is_(None),
            )
            .order_by(GateEntry.at)
        )
    )


def gate_register(site_id: int, since: datetime) -> list[GateEntry]:
    return list(
        db.session.scalars(
            db.select(GateEntry)
            .where(GateEntry.site_id == site_id, GateEntry.at >= since)
            .order_by(GateEntry.at.desc())
        )
    )


def open_incidents(site_ids: list[int]) -> list[Incident]:
    return list(
        db.session.scalars(
            db.select(Incident)
            .where(Incident.site_id.in_(site_ids or [-1]), Incident.closed_at.is_(None))
            .order_by(Incident.reported_at.desc())
        )
    )


def sign_ins(shift_id: int) -> list[ShiftSignIn]:
    return list(
        db.session.scalars(
            db.select(ShiftSignIn).where(ShiftSignIn.shift_id == shift_id).order_by(ShiftSignIn.at)
        )
    )


@dataclass
class BoardSite:
    site: Site
    on_duty: list[tuple[Shift, ShiftSignIn | None]]
    done: int
    late: int
    missed: int
    rounds: list[tuple[Shift, RoundView]]
    incidents: list[Incident]
    visitors: list[GateEntry]
    missed_sign_ins: dict[int, MissedSignIn] = field(default_factory=dict)
    ended_early: dict[tuple[int, int], RoundEndedEarly] = field(default_factory=dict)
    responses: dict[str, list[IncidentResponse]] = field(default_factory=dict)
    withdrawals: dict[tuple[int, str, int], AlarmWithdrawal] = field(default_factory=dict)
    equipment_problems: list[tuple[EquipmentItem, EquipmentCheck]] = field(default_factory=list)


def board(user: User, now: datetime | None = None) -> list[BoardSite]:
    """The live board: who is on duty where, rounds of the last 24 h, incidents, visitors."""
    now = now or utcnow()
    result = []
    for site in supervised_sites(user):
        shifts = list(
            db.session.scalars(
                db.select(Shift)
                .where(
                    Shift.site_id == site.id,
                    Shift.starts_at <= now,
                    Shift.ends_at >= now - CLOCK_LOOKBACK,
                )
                .order_by(Shift.starts_at)
            )
        )
        plan = plan_of(site.id)
        scans = shift_scans([s.id for s in shifts])
        incidents = open_incidents([site.id])
        entry = BoardSite(
            site,
            [],
            0,
            0,
            0,
            [],
            incidents,
            visitors_inside(site.id),
            missed_sign_ins([s.id for s in shifts]),
            rounds_ended_early([s.id for s in shifts]),
            incident_responses([i.id for i in incidents]),
            alarm_withdrawals([s.id for s in shifts]),
        )
        items = site_equipment(site.id, include_returned=False)
        latest = latest_checks([i.id for i in items])
        entry.equipment_problems = [
            (i, latest[i.id]) for i in items if i.id in latest and latest[i.id].condition != "ok"
        ]
        for shift in shifts:
            if shift.starts_at <= now < shift.ends_at:
                ins = [s for s in sign_ins(shift.id) if s.action == "in"]
                entry.on_duty.append((shift, ins[0] if ins else None))
            for view in round_views(shift, now, plan, scans.get(shift.id, [])):
                state = view.status.state
                entry.done += state == rules.RoundState.DONE
                entry.late += state == rules.RoundState.LATE
                entry.missed += state == rules.RoundState.MISSED
                if state != rules.RoundState.PENDING:
                    entry.rounds.append((shift, view))
        result.append(entry)
    return result


def onsite_hours(user: User, day: date, tz_name: str) -> float:
    """PAT-09: the supervisor's hours on site that day (local day of ``tz_name``), from their
    "Arrived on site" / "Leaving site" taps (``fieldapp.patrols.presence``); overlapping
    presence counts once. Spot checks are not counted: a spot check is an instant, not a
    stay, and the supervisor on site taps "Arrived" anyway (counting both would double up)."""
    from fieldapp.patrols import presence  # it imports this module

    start, end = rules.local_day_bounds(day, tz_name)
    return rules.supervisor_onsite_hours(presence.intervals(user, start, end), within=(start, end))


# ----- appraisal inputs (KPI-09, KPI-10, KPI-12) for the dashboard ------------------------------


def appraisable_guards(viewer: User) -> list[User]:
    """Guards whose figures ``viewer`` may see: the org (admin), their teams (supervisor), self."""
    query = db.select(User).where(User.org_id == viewer.org_id, User.role == Role.GUARD)
    if viewer.role == Role.GUARD:
        query = query.where(User.id == viewer.id)
    elif viewer.role != Role.ADMIN:
        query = query.where(User.team_id.in_(supervised_team_ids(viewer) or [-1]))
    return list(db.session.scalars(query.order_by(User.display_name)))


def guard_month_figures(
    viewer: User, first: date, *, now: datetime | None = None
) -> dict[int, rules.GuardMonthFigures]:
    """Per-guard monthly figures from patrol data, keyed by the guard's user id.

    ``first`` is any day of the month; the month is the organisation's local calendar month
    and a shift counts in the month it starts in (only shifts ended by ``now``). Guards are
    those ``viewer`` may see (``appraisable_guards``). Read-only: nothing is written.
    """
    now = now or utcnow()
    guards = appraisable_guards(viewer)
    ids = [g.id for g in guards]
    start, end = rules.month_bounds(first, viewer.organisation.timezone)
    shifts = list(
        db.session.scalars(
            db.select(Shift).where(
                Shift.guard_id.in_(ids or [-1]), Shift.starts_at >= start, Shift.starts_at < end
            )
        )
    )
    shift_ids = [s.id for s in shifts]
    first_in: dict[int, datetime] = {}
    for shift_id, at in db.session.execute(
        db.select(ShiftSignIn.shift_id, ShiftSignIn.at).where(
            ShiftSignIn.shift_id.in_(shift_ids or [-1]), ShiftSignIn.action == "in"
        )
    ):
        first_in[shift_id] = min(at, first_in.get(shift_id, at))
    incident_types: dict[int, list[str]] = defaultdict(list)
    for shift_id, kind in db.session.execute(
        db.select(Incident.shift_id, Incident.incident_type).where(
            Incident.shift_id.in_(shift_ids or [-1])
        )
    ):
        incident_types[shift_id].append(kind)
    scans = shift_scans(shift_ids)
    plans: dict[int, PatrolPlan | None] = {}
    facts: dict[int, list[rules.ShiftFacts]] = defaultdict(list)
    statuses: dict[int, list[rules.RoundStatus]] = defaultdict(list)
    for shift in shifts:
        facts[shift.guard_id].append(
            rules.ShiftFacts(
                starts_at=shift.starts_at,
                ends_at=shift.ends_at,
                first_sign_in=first_in.get(shift.id),
                sign_in_deadline=sign_in_deadline(shift),
                incident_types=tuple(incident_types.get(shift.id, ())),
            )
        )
        if shift.ends_at <= now:
            if shift.site_id not in plans:
                plans[shift.site_id] = plan_of(shift.site_id)
            views = round_views(shift, now, plans[shift.site_id], scans.get(shift.id, []))
            statuses[shift.guard_id].extend(v.status for v in views)
    inspections: dict[int, list[rules.InspectionFacts]] = defaultdict(list)
    for check in db.session.scalars(
        db.select(SpotCheck).where(
            SpotCheck.guard_id.in_(ids or [-1]), SpotCheck.at >= start, SpotCheck.at < end
        )
    ):
        inspections[check.guard_id].append(
            rules.InspectionFacts(
                check.at, check.guard_present, check.in_uniform, tuple(check.violations or ())
            )
        )
    late_takeovers: dict[int, int] = defaultdict(int)
    for guard_id in db.session.scalars(
        db.select(Handover.incoming_guard_id).where(
            Handover.incoming_guard_id.in_(ids or [-1]),
            Handover.late.is_(True),
            Handover.scheduled_at >= start,
            Handover.scheduled_at < end,
        )
    ):
        late_takeovers[guard_id] += 1
    for guard_id in _missing_takeovers(ids, start, min(end, now - rules.DEFAULT_HANDOVER_GRACE)):
        late_takeovers[guard_id] += 1
    return {
        guard_id: rules.guard_month_figures(
            facts.get(guard_id, []),
            inspections.get(guard_id, []),
            statuses.get(guard_id, []),
            late_takeovers=late_takeovers.get(guard_id, 0),
            now=now,
        )
        for guard_id in ids
    }


# ----- the rule clock -----------------------------------------------------------------------


def _phone_holds_records(guard_id: int, since: datetime) -> bool:
    from fieldapp.models import Device

    return bool(
        db.session.scalar(
            db.select(Device.id).where(
                Device.user_id == guard_id,
                Device.revoked_at.is_(None),
                Device.pending_count > 0,
                Device.oldest_pending_at <= since,
            )
        )
    )


def _raised_keys(candidates) -> set[tuple[int, str]]:
    """Which of these (org id, dedupe key) pairs already have an event."""
    by_org: dict[int, list[str]] = defaultdict(list)
    for org_id, key in candidates:
        by_org[org_id].append(key)
    found = set()
    for org_id, keys in by_org.items():
        for start in range(0, len(keys), 500):
            found.update(
                (org_id, key)
                for key in db.session.scalars(
                    db.select(PushEvent.dedupe_key).where(
                        PushEvent.org_id == org_id,
                        PushEvent.dedupe_key.in_(keys[start : start + 500]),
                    )
                )
            )
    return found


def check_rounds(now: datetime) -> int:
    """Raise one alarm per late round and one per missed round (PAT-03); returns how many.

    Judged by the scans' device time. A missed-round alarm is held while the guard's phone
    reports records from the shift still unsent (it may hold the scans), up to MISSED_HOLD.
    """
    shifts = list(
        db.session.scalars(
            db.select(Shift).where(Shift.starts_at <= now, Shift.ends_at >= now - CLOCK_LOOKBACK)
        )
    )
    scans = shift_scans([s.id for s in shifts])
    plans: dict[int, PatrolPlan | None] = {}
    alarming: dict[Shift, list[RoundView]] = {}
    for shift in shifts:
        if shift.site_id not in plans:
            plans[shift.site_id] = plan_of(shift.site_id)
        views = round_views(shift, now, plans[shift.site_id], scans.get(shift.id, []))
        alarming[shift] = [
            view
            for view in views
            if view.status.state in (rules.RoundState.LATE, rules.RoundState.MISSED)
        ]
    # Rounds alarmed at an earlier tick: notify would do nothing for them (same dedupe key),
    # so they are skipped with one query per organisation instead of three per round.
    already = _raised_keys(
        (shift.org_id, f"round-{view.status.state.value}:{shift.id}:{view.number}")
        for shift, views in alarming.items()
        for view in views
    )
    raised = 0
    for shift, views in alarming.items():
        site = shift.site
        tz = ZoneInfo(site.timezone)
        for view in views:
            state = view.status.state
            if (shift.org_id, f"round-{state.value}:{shift.id}:{view.number}") in already:
                continue
            missed = state == rules.RoundState.MISSED
            if (
                missed
                and now < shift.ends_at + MISSED_HOLD
                and _phone_holds_records(shift.guard_id, shift.ends_at)
            ):
                continue
            due = view.round.window_end.astimezone(tz).strftime("%H:%M")
            event = push.notify(
                ROUND_MISSED if missed else ROUND_LATE,
                user_ids=_site_supervisor_ids(site),
                org_id=shift.org_id,
                url="/patrols/board",
                params={
                    "site": site.name,
                    "round": view.number,
                    "due": due,
                    "left": len(view.status.remaining),
                    "guard": shift.guard.display_name,
                },
                dedupe_key=f"round-{state.value}:{shift.id}:{view.number}",
            )
            raised += event is not None
    return raised


@push.forget_keys("round-late", "round-missed", "not-signed-in", "takeover-missing")
def _dead_shift_alarm_keys(now: datetime, keys: list[str]) -> list[str]:
    """The round, sign-in and takeover checks read shifts that ended ``CLOCK_LOOKBACK`` ago at
    most, and a shift's times are fixed once it started (``change_shift``), before any alarm."""
    return push.dead_unless(keys, Shift.id, Shift.ends_at >= now - CLOCK_LOOKBACK, convert=int)


def sign_in_deadline(shift: Shift) -> datetime:
    return shift.starts_at + timedelta(minutes=SIGN_IN_DEADLINE_MINUTES)


@jobs.rule_check("patrol.sign_ins")
def check_sign_ins(now: datetime) -> int:
    """PAT-15: record and alarm (once per shift) a guard not signed in by the deadline.

    Shifts already over when the clock notices are recorded without an alarm.
    A sign-in counts by the phone's time: one made before the deadline but still on the
    phone is not there yet, so the alarm goes (the post looks unmanned to the supervisor).
    """
    latest_start = now - timedelta(minutes=SIGN_IN_DEADLINE_MINUTES)
    recorded = db.select(MissedSignIn.id).where(MissedSignIn.shift_id == Shift.id)
    shifts = list(
        db.session.scalars(
            db.select(Shift).where(
                Shift.starts_at <= latest_start,
                Shift.starts_at >= now - CLOCK_LOOKBACK,
                ~recorded.exists(),
            )
        )
    )
    first_in: dict[int, datetime] = {}
    for shift_id, at in db.session.execute(
        db.select(ShiftSignIn.shift_id, ShiftSignIn.at).where(
            ShiftSignIn.shift_id.in_([s.id for s in shifts] or [-1]), ShiftSignIn.action == "in"
        )
    ):
        first_in[shift_id] = min(at, first_in.get(shift_id, at))
    shifts = [s for s in shifts if s.id not in first_in or first_in[s.id] > sign_in_deadline(s)]
    raised = 0
    for shift in shifts:
        deadline = sign_in_deadline(shift)
        if shift.ends_at <= deadline:
            continue
        db.session.add(
            MissedSignIn(
                org_id=shift.org_id, shift_id=shift.id, guard_id=shift.guard_id, deadline=deadline
            )
        )
        if shift.ends_at <= now:
            continue  # recorded for the appraisal; an alarm cannot get anyone there any more
        site = shift.site
        event = push.notify(
            NOT_SIGNED_IN,
            user_ids=_site_supervisor_ids(site),
            org_id=shift.org_id,
            url="/patrols/board",
            params={
                "site": site.name,
                "guard": shift.guard.display_name,
                "post": shift.post.name,
                "start": shift.starts_at.astimezone(ZoneInfo(site.timezone)).strftime("%H:%M"),
            },
            dedupe_key=f"not-signed-in:{shift.id}",
        )
        raised += event is not None
    return raised


@jobs.rule_check("patrol.takeovers")
def check_takeovers(now: datetime) -> int:
    """PAT-10: one alarm per shift whose successor on the post has not taken over.

    A takeover is due when another guard is rostered on the same post from the shift end (or
    earlier); it is missing when no handover of the shift exists by the end plus the grace
    (``rules.handover_late`` with no takeover). A handover that arrives later still raises
    "late takeover" as usual.
    """
    grace = rules.DEFAULT_HANDOVER_GRACE
    Next = db.aliased(Shift)
    successor = db.select(Next.id).where(
        Next.post_id == Shift.post_id,
        Next.guard_id != Shift.guard_id,
        Next.starts_at <= Shift.ends_at,
        Next.ends_at > Shift.ends_at,
    )
    handed_over = db.select(Handover.id).where(Handover.shift_id == Shift.id)
    shifts = db.session.scalars(
        db.select(Shift).where(
            Shift.ends_at <= now - grace,
            Shift.ends_at >= now - CLOCK_LOOKBACK,
            successor.exists(),
            ~handed_over.exists(),
        )
    ).all()
    raised = 0
    for shift in shifts:
        if not rules.handover_late(shift.ends_at, None, grace):
            continue
        incoming = db.session.scalar(
            db.select(Next)
            .where(
                Next.post_id == shift.post_id,
                Next.guard_id != shift.guard_id,
                Next.starts_at <= shift.ends_at,
                Next.ends_at > shift.ends_at,
            )
            .order_by(Next.starts_at.desc())
            .limit(1)
        )
        site = shift.site
        event = push.notify(
            TAKEOVER_MISSING,
            user_ids=_site_supervisor_ids(site),
            org_id=shift.org_id,
            url="/patrols/board",
            params={
                "site": site.name,
                "post": shift.post.name,
                "guard": shift.guard.display_name,
                "incoming": incoming.guard.display_name if incoming else "",
                "due": shift.ends_at.astimezone(ZoneInfo(site.timezone)).strftime("%H:%M"),
            },
            dedupe_key=f"takeover-missing:{shift.id}",
        )
        raised += event is not None
    return raised


def _missing_takeovers(guard_ids: list[int], start: datetime, end: datetime) -> list[int]:
    """KPI-10 q: for each shift that ended in [start, end) with no handover at all, the guard
    rostered next on that post (as ``check_takeovers`` alarms): never taking over counts like
    taking over late."""
    Next = db.aliased(Shift)
    handed_over = db.select(Handover.id).where(Handover.shift_id == Shift.id)
    rows = db.session.execute(
        db.select(Shift.id, Next.guard_id)
        .join(
            Next,
            (Next.post_id == Shift.post_id)
            & (Next.guard_id != Shift.guard_id)
            & (Next.starts_at <= Shift.ends_at)
            & (Next.ends_at > Shift.ends_at),
        )
        .where(Shift.ends_at >= start, Shift.ends_at < end, ~handed_over.exists())
        # Implied by the join (the next shift spans the first one's end, which is in range);
        # said outright so that the next shifts too are found by time, not among all shifts.
        .where(Next.ends_at > start, Next.starts_at < end)
        .order_by(Shift.id, Next.starts_at)
    )
    incoming = {shift_id: guard_id for shift_id, guard_id in rows}  # the latest start wins
    return [guard_id for guard_id in incoming.values() if guard_id in guard_ids]


def missed_sign_ins(shift_ids: list[int]) -> dict[int, MissedSignIn]:
    rows = db.session.scalars(
        db.select(MissedSignIn).where(MissedSignIn.shift_id.in_(shift_ids or [-1]))
    )
    return {row.shift_id: row for row in rows}


# ----- the day pack -------------------------------------------------------------------------


def daypack_shifts(user: User) -> list[dict]:
    """Today's shift of a guard, for the phone (the pages carry the rest)."""
    if user.role != Role.GUARD:
        return []
    shift = current_shift(user)
    if shift is None:
        return []
    return [shift_for_phone(shift, shift.post, shift.site)]


GUARD_PAGES = ("/patrols/duty", "/patrols/incident", "/patrols/gate", "/patrols/handover")


def daypack_pages(user: User) -> list[str]:
    if user.role == Role.GUARD:
        return list(GUARD_PAGES)
    if user.role in (Role.SUPERVISOR, Role.ADMIN):
        return ["/patrols/spot-check"]
    return []
