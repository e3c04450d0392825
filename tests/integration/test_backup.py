"""Backup and restore: one command each, and a round trip gives back every record exactly."""

from sqlalchemy import select

from fieldapp.audit.models import AuditEntry
from fieldapp.extensions import db
from fieldapp.models import Organisation, Site, Team, User


def snapshot() -> dict[str, list[tuple]]:
    """Every row of every table, in primary-key order."""
    db.session.expire_all()
    rows = {}
    for table in db.metadata.sorted_tables:
        order = list(table.primary_key.columns) or list(table.columns)
        rows[table.name] = [tuple(r) for r in db.session.execute(select(table).order_by(*order))]
    db.session.rollback()
    return rows


def let_go() -> None:
    """The test's own connections must not hold locks while the database is replaced."""
    db.session.remove()
    db.engine.dispose()


def test_a_backup_brings_back_every_record_and_the_audit_chain(demo, tmp_path):
    org = db.session.scalar(select(Organisation))
    site = Site(org_id=org.id, kind="shop", name="备份前的店", address="淮海路 5 号")
    db.session.add(site)
    db.session.commit()
    site_id, org_id = site.id, org.id
    before = snapshot()
    assert before["site"] and before["audit_entry"]
    let_go()

    cli = demo.test_cli_runner()
    target = tmp_path / "nightly" / "fieldapp.backup"
    done = cli.invoke(args=["backup", str(target)])
    assert done.exit_code == 0, done.output
    assert target.is_file() and target.stat().st_size > 0

    # The day goes on: a site is deleted, a person renamed, a team added.
    db.session.delete(db.session.get(Site, site_id))
    courier = db.session.scalar(select(User).where(User.username == "courier1"))
    courier.display_name = "改过的名字"
    db.session.add(Team(org_id=org_id, name="备份后的队", kind="delivery"))
    db.session.commit()
    assert snapshot() != before
    let_go()

    restored = cli.invoke(args=["restore", str(target), "--yes"])
    assert restored.exit_code == 0, restored.output
    assert "audit trail OK" in restored.output

    assert snapshot() == before
    assert db.session.get(Site, site_id).name == "备份前的店"
    let_go()
    verified = cli.invoke(args=["audit-verify"])
    assert verified.exit_code == 0, verified.output

    # The restored database is live: new changes chain on from the restored head.
    db.session.add(Team(org_id=org_id, name="恢复后的队", kind="delivery"))
    db.session.commit()
    last = db.session.scalar(select(AuditEntry).order_by(AuditEntry.id.desc()))
    assert last.table_name == "team" and last.fields["name"] == "恢复后的队"
    let_go()
    assert cli.invoke(args=["audit-verify"]).exit_code == 0


def test_restore_refuses_a_file_that_is_not_a_backup(demo, tmp_path):
    bogus = tmp_path / "not-a-backup"
    bogus.write_bytes(b"this is not a database dump" * 100)
    let_go()
    result = demo.test_cli_runner().invoke(args=["restore", str(bogus), "--yes"])
    assert result.exit_code != 0
    assert "courier1" in db.session.scalars(select(User.username)).all()  # nothing replaced
