"""Commands: ``flask --app wsgi audit-verify [--anchors FILE] | backup PATH | restore PATH``."""

import os
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime

import click
from flask import current_app
from flask.cli import with_appcontext

from fieldapp.audit import backup as backups
from fieldapp.audit import service
from fieldapp.extensions import db

# One anchor per line: "<entry id> <entry hash> <UTC time it was recorded>"; "#" starts a comment.
ANCHOR_LINE = re.compile(r"^(?P<id>[1-9][0-9]*)\s+(?P<hash>[0-9a-f]{64})(?:\s+(?P<at>\S+))?$")
ANCHOR_FILE_PROBLEM = 2  # exit status: the anchor file cannot be used (1: the trail is broken)


@dataclass(frozen=True)
class Anchor:
    line: int
    id: int
    hash: str
    at: str


class AnchorFileError(Exception):
    pass


def read_anchors(path: str) -> list[Anchor]:
    """Every anchor recorded in ``path``, in the order they were written."""
    if not os.path.exists(path):
        raise AnchorFileError(
            f"anchor file {path} does not exist. If this is the first run, create it empty "
            f"(touch {path}); otherwise it was moved or deleted: restore it from its copy."
        )
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as error:
        raise AnchorFileError(f"anchor file {path} cannot be read: {error}") from None
    anchors = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = ANCHOR_LINE.match(line)
        if match is None:
            raise AnchorFileError(
                f"anchor file {path}, line {number}: expected '<entry id> <hash> <UTC time>', "
                f"found {raw.strip()!r}"
            )
        anchors.append(Anchor(number, int(match["id"]), match["hash"], match["at"] or "?"))
    return anchors


def first_failed_anchor(anchors: list[Anchor]) -> tuple[Anchor, str] | None:
    """The first anchor (in file order) whose entry is gone or has another hash, and why."""
    stored = service.stored_hashes(db.session, (a.id for a in anchors))
    for anchor in anchors:
        found = stored.get(anchor.id)
        if found is None:
            return anchor, "the entry is missing (the trail was truncated)"
        if found != anchor.hash:
            return anchor, f"the entry now has hash {found[:12]}… (the trail was rewritten)"
    return None


def append_anchor(path: str, entry_id: int, head: str) -> str:
    at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    line = f"{entry_id} {head} {at}\n"
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        raise AnchorFileError(f"anchor file {path} cannot be written: {error}") from None
    return at


@click.command("audit-verify")
@click.option(
    "--anchors",
    "anchors_path",
    metavar="FILE",
    type=click.Path(dir_okay=True),  # checked by read_anchors, for a readable message
    help="Append-only file kept off the database server: every head recorded there must "
    "still be in the trail with the same hash; when all verifies, the current head is added.",
)
@with_appcontext
def audit_verify_command(anchors_path: str | None):
    """Check the audit trail's hash chain; exit 1 naming the first broken entry.

    With --anchors FILE, a trail whose recent entries were deleted (or rewritten) is caught
    too: the heads recorded by earlier runs must all still be there.
    """
    anchors = []
    if anchors_path is not None:
        try:
            anchors = read_anchors(anchors_path)
        except AnchorFileError as error:
            click.echo(f"Audit trail NOT CHECKED: {error}", err=True)
            sys.exit(ANCHOR_FILE_PROBLEM)
        failed = first_failed_anchor(anchors)
        if failed is not None:
            anchor, reason = failed
            click.echo(
                f"Audit trail BROKEN at anchored entry {anchor.id} (anchor recorded {anchor.at}, "
                f"line {anchor.line} of {anchors_path}): {reason}.",
                err=True,
            )
            sys.exit(1)
    verdict = service.verify(db.session)
    if not verdict.ok:
        click.echo(
            f"Audit trail BROKEN at entry {verdict.broken_id}: {verdict.reason} "
            f"({verdict.count} entries before it verify).",
            err=True,
        )
        sys.exit(1)
    click.echo(f"Audit trail OK: {verdict.count} entries, head {verdict.head}")
    if anchors_path is None:
        return
    if not verdict.count:
        click.echo("The trail is empty: no anchor recorded.")
        return
    try:
        # Entry IDs are positions in the chain, with no gaps (verify checks it): the head's ID
        # is the number of entries.
        at = append_anchor(anchors_path, verdict.count, verdict.head)
    except AnchorFileError as error:
        click.echo(f"Audit trail OK but NOT ANCHORED: {error}", err=True)
        sys.exit(ANCHOR_FILE_PROBLEM)
    click.echo(
        f"{len(anchors)} earlier anchors still in the trail; "
        f"anchored entry {verdict.count} at {at} in {anchors_path}"
    )


@click.command("backup")
@click.argument("path", type=click.Path(dir_okay=False))
@with_appcontext
def backup_command(path: str):
    """Write a consistent copy of the database to PATH (SQLite file or pg_dump archive)."""
    url = current_app.config["SQLALCHEMY_DATABASE_URI"]
    try:
        written = backups.backup(url, path)
    except backups.BackupError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"Backup written to {written}")


@click.command("restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def restore_command(path: str, yes: bool):
    """Replace the database with the backup at PATH (stop the web and workers first)."""
    url = current_app.config["SQLALCHEMY_DATABASE_URI"]
    if not yes:
        click.confirm(f"Replace every table of {db.engine.url!r} with {path}?", abort=True)
    db.session.remove()
    db.engine.dispose()
    try:
        backups.restore(url, path)
    except backups.BackupError as error:
        raise click.ClickException(str(error)) from error
    verdict = service.verify(db.session)
    db.session.remove()
    click.echo(f"Restored from {path}; audit trail {'OK' if verdict.ok else 'BROKEN'}.")
    if not verdict.ok:
        click.echo(f"First broken entry: {verdict.broken_id} ({verdict.reason})", err=True)
        sys.exit(1)
