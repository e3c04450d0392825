"""Command-line tasks: ``flask --app wsgi <command>``."""

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
