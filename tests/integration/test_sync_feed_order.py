"""The change feed's cursor never skips a change that commits late, and old cursors stay valid."""

from datetime import timedelta

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import insert, text
from sqlalchemy.orm import Session

from fieldapp.extensions import db
from fieldapp.models import Organisation, Team, utcnow
from fieldapp.sync import changes
from fieldapp.sync.models import Change
from tests.integration.test_sync_engine import PHONE
from tests.integration.test_sync_pull import pull

FEED_POSITION = "7f28ae2e5d66"  # the migration that adds sync_change.pos


def _ids(answer):
    return [c["id"] for c in answer["changes"]]


def test_a_change_that_commits_late_is_not_skipped(login, demo):
    """A publishing transaction stuck open (a held lock, a slow request) for longer than any
    settling delay, while a later change commits and is pulled: the stuck change still arrives
    once it commits, for a phone that saw the later change and for one that saw nothing."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: a second transaction cannot publish")
    # A quiet feed: everything published so far is long settled.
    db.session.execute(db.update(Change).values(at=utcnow() - timedelta(minutes=10)))
    db.session.commit()
    courier = login("courier1", device_id=PHONE)
    guard = login("guard1")
    start_courier, start_guard = pull(courier)["cursor"], pull(guard)["cursor"]
    org_id = db.session.scalar(db.select(Organisation.id))
    couriers = db.session.scalar(db.select(Team.id).where(Team.name == "配送一组"))

    # Inserted 90 s ago by a transaction that is still open: for the whole organisation.
    stuck = Session(db.engine)
    stuck.add(
        Change(
            org_id=org_id,
            entity="note",
            entity_id="stuck",
            data={"n": "stuck"},
            at=utcnow() - timedelta(seconds=90),
        )
    )
    stuck.flush()
    try:
        # A second later, a change for the couriers' team only, committed at once.
        db.session.add(
            Change(
                org_id=org_id,
                team_id=couriers,
                entity="note",
                entity_id="committed",
                data={"n": "committed"},
                at=utcnow() - timedelta(seconds=89),
            )
        )
        db.session.commit()

        seen_by_courier = pull(courier, start_courier, entity="note")
        assert _ids(seen_by_courier) == ["committed"]
        seen_by_guard = pull(guard, start_guard, entity="note")
        assert _ids(seen_by_guard) == []
        stuck.commit()
    finally:
        stuck.close()

    assert _ids(pull(courier, seen_by_courier["cursor"], entity="note")) == ["stuck"]
    assert _ids(pull(guard, seen_by_guard["cursor"], entity="note")) == ["stuck"]
    # The feed is in commit order: the stuck change was inserted first but committed last.
    rows = db.session.execute(
        db.select(Change.entity_id, Change.seq, Change.pos).where(Change.entity == "note")
    ).all()
    by_id = {r.entity_id: r for r in rows}
    assert by_id["stuck"].seq < by_id["committed"].seq
    assert by_id["stuck"].pos > by_id["committed"].pos


def test_every_committed_change_has_its_place_and_the_cursor_moves_to_the_last(login, demo):
    courier = login("courier1", device_id=PHONE)
    start = pull(courier)["cursor"]
    org_id = db.session.scalar(db.select(Organisation.id))
    for n in range(3):
        changes.publish(org_id, "note", n, {"n": n})
    db.session.commit()
    answer = pull(courier, start)
    assert [c["data"]["n"] for c in answer["changes"]] == [0, 1, 2]
    assert answer["cursor"] == answer["changes"][-1]["seq"] > start
    assert db.session.scalar(db.select(db.func.count()).where(Change.pos.is_(None))) == 0
    assert pull(courier, answer["cursor"])["changes"] == []


def test_cursors_from_before_the_migration_stay_valid(login, demo):
    """Phones hold cursors that are ``seq`` values: after the migration they resume exactly."""
    courier = login("courier1", device_id=PHONE)
    org_id = db.session.scalar(db.select(Organisation.id))
    db.session.remove()
    downgrade(revision=f"{FEED_POSITION}-1")
    with db.engine.begin() as conn:
        for n in range(3):  # the columns the table had then
            conn.execute(
                insert(Change.__table__).values(
                    org_id=org_id,
                    entity="note",
                    entity_id=str(n),
                    deleted=False,
                    data={"n": n},
                    at=utcnow(),
                )
            )
        old_seqs = list(
            conn.execute(
                text("SELECT seq FROM sync_change WHERE entity = 'note' ORDER BY seq")
            ).scalars()
        )
    upgrade(revision="heads")

    rows = db.session.execute(
        db.select(Change.seq, Change.pos).where(Change.entity == "note").order_by(Change.seq)
    ).all()
    assert [r.pos for r in rows] == [r.seq for r in rows] == old_seqs
    # A phone that had pulled the first of them resumes after it.
    answer = pull(courier, old_seqs[0], entity="note")
    assert [c["data"]["n"] for c in answer["changes"]] == [1, 2]
    # New changes come after every old one.
    changes.publish(org_id, "note", "new", {"n": "new"})
    db.session.commit()
    answer = pull(courier, answer["cursor"], entity="note")
    assert [c["data"]["n"] for c in answer["changes"]] == ["new"]
    assert answer["changes"][0]["seq"] > max(old_seqs)
