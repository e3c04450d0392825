"""Command-line tasks: ``flask --app wsgi <command>``."""

import os
from zoneinfo import available_timezones

import click
from flask import Flask

from fieldapp import demo


def init_app(app: Flask) -> None:
    @app.cli.command("seed-demo")
    def seed_demo_command():
        """Create the demo organisation and print its logins (safe to run twice)."""
        users = demo.seed_demo()
        click.echo(f"Demo logins (password for all: {demo.DEMO_PASSWORD}):")
        for user in users:
            click.echo(f"  {user.username:<12} {user.role.value:<11} {user.name}")

    @app.cli.command("create-admin")
    @click.option("--org-code", required=True, help="Short code of the organisation, e.g. SHA.")
    @click.option("--org-name", help="Its name; needed when the organisation is new.")
    @click.option("--timezone", default="Asia/Shanghai", show_default=True)
    @click.option("--username", required=True)
    @click.option("--name", "display_name", required=True, help="The name people see.")
    def create_admin_command(org_code, org_name, timezone, username, display_name):
        """Create an organisation's first administrator (and the organisation if it is new).

        The password is asked for twice, or read from FIELDAPP_ADMIN_PASSWORD for scripts.
        """
        password = os.environ.get("FIELDAPP_ADMIN_PASSWORD") or click.prompt(
            "Password", hide_input=True, confirmation_prompt=True
        )
        try:
            org, created = create_admin(
                org_code, org_name, timezone, username, display_name, password
            )
        except ValueError as problem:
            raise click.ClickException(str(problem)) from None
        made = "Created" if created else "Kept"
        click.echo(f"{made} organisation {org.code} ({org.name}); admin {username} can log in.")


def create_admin(org_code, org_name, timezone, username, display_name, password):
    """The organisation (new or existing) and its new admin; ValueError says what is wrong."""
    from fieldapp.accounts.service import password_problem
    from fieldapp.extensions import db
    from fieldapp.models import Organisation, Role, User

    problem = password_problem(password)
    if problem:
        raise ValueError(problem)
    if db.session.scalar(db.select(User.id).where(User.username == username)):
        raise ValueError(f"The username {username!r} is taken.")
    org = db.session.scalar(db.select(Organisation).where(Organisation.code == org_code))
    created = org is None
    if created:
        if not org_name:
            raise ValueError(f"No organisation {org_code!r} yet: give --org-name to create it.")
        if timezone not in available_timezones():
            raise ValueError(f"Unknown time zone {timezone!r} (e.g. Asia/Shanghai).")
        org = Organisation(code=org_code, name=org_name, timezone=timezone)
        db.session.add(org)
        db.session.flush()
    admin = User(org_id=org.id, username=username, display_name=display_name, role=Role.ADMIN)
    admin.set_password(password)
    db.session.add(admin)
    db.session.commit()
    return org, created
