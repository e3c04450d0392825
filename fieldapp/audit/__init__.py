"""Audit trail (hash-chained, append-only), its admin page, and backup/restore commands.

``init_app(app)`` is the one line in ``fieldapp/__init__.py``; everything else stays here.
"""

from flask import Flask


def init_app(app: Flask) -> None:
    from fieldapp.audit import cli, service
    from fieldapp.audit.routes import bp

    service.install()
    app.extensions["fieldapp.audit"] = True
    app.register_blueprint(bp)
    for command in (cli.audit_verify_command, cli.backup_command, cli.restore_command):
        app.cli.add_command(command)
