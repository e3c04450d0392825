"""`audit-verify --anchors FILE`: a trail whose newest entries were deleted or rewritten is caught.

The chain alone cannot see its own tail cut off (a shorter chain still verifies); the heads
recorded in an anchor file kept elsewhere can.
"""

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, text

from fieldapp.audit import service
from fieldapp.audit.models import AuditEntry
from fieldapp.extensions import db
from fieldapp.models import Organisation, Site
from tests.integration.test_audit import entries, verify_cli

ANCHOR = re.compile(r"^(\d+) ([0-9a-f]{64}) (\S+)$")


def verify_with_anchors(app, path):
    return app.test_cli_runner().invoke(args=["audit-verify", "--anchors", str(path)])


def anchor_lines(path) -> list[tuple[int, str, str]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    matches = [ANCHOR.match(line) for line in lines]
    assert all(matches), lines
    return [(int(m[1]), m[2], m[3]) for m in matches]


def add_sites(n: int) -> None:
    """New audit entries at the tail of the trail."""
    org_id = db.session.scalar(select(Organisation.id))
    for i in range(n):
        db.session.add(Site(org_id=org_id, kind="shop", name=f"锚点测试 {i}"))
        db.session.commit()


def head() -> AuditEntry:
    return entries()[-1]


def test_a_clean_run_appends_the_current_head(demo, tmp_path):
    anchors = tmp_path / "audit-anchors.txt"
    anchors.touch()
    result = verify_with_anchors(demo, anchors)
    assert result.exit_code == 0, result.output
    last = head()
    [(entry_id, entry_hash, at)] = anchor_lines(anchors)
    assert (entry_id, entry_hash) == (last.id, last.hash)
    assert entry_id == db.session.scalar(select(func.count()).select_from(AuditEntry))
    recorded = datetime.strptime(at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs(datetime.now(UTC) - recorded) < timedelta(minutes=1)
    assert f"anchored entry {last.id}" in result.output

    # The next run checks that anchor, then adds the new head: one line per run.
    add_sites(2)
    again = verify_with_anchors(demo, anchors)
    assert again.exit_code == 0, again.output
    assert "1 earlier anchors still in the trail" in again.output
    assert [line[0] for line in anchor_lines(anchors)] == [last.id, last.id + 2]


def test_deleting_the_newest_entries_is_detected(demo, tmp_path):
    anchors = tmp_path / "audit-anchors.txt"
    anchors.touch()
    assert verify_with_anchors(demo, anchors).exit_code == 0
    first = head().id
    add_sites(3)
    assert verify_with_anchors(demo, anchors).exit_code == 0
    second = head().id
    assert second == first + 3
    before = anchors.read_text(encoding="utf-8")

    # Someone with database access removes the last entries, back to before the first anchor.
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_entry WHERE id > :keep"), {"keep": first - 2})
    assert verify_cli(demo).exit_code == 0  # the shorter chain still verifies on its own

    result = verify_with_anchors(demo, anchors)
    assert result.exit_code == 1
    # The first anchor that fails is named, with the line it is on.
    assert f"anchored entry {first} " in result.output and "line 1 " in result.output
    assert "missing" in result.output and "truncated" in result.output
    assert "Traceback" not in result.output
    assert anchors.read_text(encoding="utf-8") == before  # nothing is anchored on a bad trail


def test_a_rewritten_anchored_entry_is_detected(demo, tmp_path):
    anchors = tmp_path / "audit-anchors.txt"
    anchors.touch()
    assert verify_with_anchors(demo, anchors).exit_code == 0
    anchored = head()

    # A careful forger changes the head entry and computes its hash again: the chain verifies.
    row = dict(
        db.session.execute(select(AuditEntry.__table__).where(AuditEntry.id == anchored.id))
        .mappings()
        .one()
    )
    row["actor"] = "someone_else"
    forged = service.chain_hash(row["prev_hash"], row)
    with db.engine.begin() as conn:
        conn.execute(
            text("UPDATE audit_entry SET actor = 'someone_else', hash = :h WHERE id = :id"),
            {"h": forged, "id": anchored.id},
        )
    assert verify_cli(demo).exit_code == 0

    result = verify_with_anchors(demo, anchors)
    assert result.exit_code == 1
    assert f"anchored entry {anchored.id} " in result.output and "rewritten" in result.output
    assert len(anchor_lines(anchors)) == 1


def test_a_broken_chain_is_not_anchored(demo, tmp_path):
    anchors = tmp_path / "audit-anchors.txt"
    anchors.touch()
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_entry SET actor = 'someone_else' WHERE id = 3"))
    result = verify_with_anchors(demo, anchors)
    assert result.exit_code == 1 and "entry 3" in result.output
    assert anchors.read_text(encoding="utf-8") == ""


def test_a_missing_or_unusable_anchor_file_is_a_clear_error(demo, tmp_path):
    missing = tmp_path / "nowhere" / "audit-anchors.txt"
    result = verify_with_anchors(demo, missing)
    assert result.exit_code == 2
    assert "does not exist" in result.output and f"touch {missing}" in result.output
    assert not missing.exists()  # never created silently: a deleted file must be noticed
    assert isinstance(result.exception, SystemExit)  # a message, not a traceback

    a_directory = verify_with_anchors(demo, tmp_path)
    assert a_directory.exit_code == 2 and "cannot be read" in a_directory.output
    assert isinstance(a_directory.exception, SystemExit)

    garbled = tmp_path / "garbled.txt"
    garbled.write_text("# anchors\n12 not-a-hash 2026-01-01T00:00:00Z\n", encoding="utf-8")
    bad_line = verify_with_anchors(demo, garbled)
    assert bad_line.exit_code == 2 and "line 2" in bad_line.output
    assert isinstance(bad_line.exception, SystemExit)
    assert "Traceback" not in bad_line.output


def test_without_anchors_nothing_is_written(demo, tmp_path):
    result = verify_cli(demo)
    assert result.exit_code == 0 and "Audit trail OK" in result.output
    assert list(tmp_path.iterdir()) == []
