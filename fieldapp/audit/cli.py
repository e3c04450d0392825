"""Commands: ``flask --app wsgi audit-verify | backup PATH | restore PATH``."""

import sys

import click
from flask import current_app
from flask.cli import with_appcontext

from fieldapp.audit import backup as backups
from fieldapp.audit import service
from fieldapp.extensions import db


@click.command("audit-verify")
@with_appcontext
def audit_verify_command():
    """Check the audit trail's hash chain; exit 1 naming the first broken entry."""
    verdict = service.verify(db.session)
    if not verdict.ok:
        click.echo(
            f"Audit trail BROKEN at entry {verdict.broken_id}: {verdict.reason} "
            f"({verdict.count} entries before it verify).",
            err=True,
        )
        sys.exit(1)
    click.echo(f"Audit trail OK: {verdict.count} entries, head {verdict.head}")


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
