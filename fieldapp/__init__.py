"""fieldapp: an offline-first web app for couriers, security guards and field reps."""

import importlib
import os
import secrets
from pathlib import Path

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from fieldapp import (
    config,
    errors,
    i18n,
    pool,  # noqa: F401  (its listener replaces pooled connections the server closed)
    security,
)
from fieldapp.extensions import babel, csrf, db, htmx, login_manager, migrate

ROOT = Path(__file__).resolve().parent.parent


class FieldApp(Flask):
    """Flask whose static URLs carry the content version of the static files.

    ``url_for("static", filename="js/app.js")`` gives ``/static/v/<version>/js/app.js``, served
    with a year-long cache (fieldapp/shell/routes.py); a new release changes the version.
    """

    def url_for(self, endpoint: str, /, **values) -> str:
        if endpoint == "static":
            from fieldapp.shell.pwa import shell_assets

            endpoint = "shell.versioned_static"
            values["version"] = shell_assets(self.static_folder, self.config["RELEASE"])[1]
        return super().url_for(endpoint, **values)


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app: configuration, extensions, blueprints, in one visible place."""
    app = FieldApp(
        __name__,
        instance_path=os.environ.get("FIELDAPP_INSTANCE") or str(ROOT / "instance"),
        instance_relative_config=True,
        static_folder=str(ROOT / "static"),
        template_folder=str(ROOT / "templates"),
    )
    app.config.from_object(config.Config)
    app.config.update(config.from_environment())
    if test_config:
        app.config.update(test_config)
    os.makedirs(app.instance_path, exist_ok=True)
    _finish_config(app)
    if app.config.get("PROXIES"):
        count = app.config["PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    login_manager.init_app(app)
    csrf.init_app(app)
    babel.init_app(
        app,
        locale_selector=i18n.select_locale,
        timezone_selector=i18n.select_timezone,
        default_translation_directories=str(ROOT / "translations"),
    )
    htmx.init_app(app)
    _register_blueprints(app)
    security.init_app(app)
    errors.init_app(app)
    i18n.init_app(app)
    _register_cli(app)
    return app


def _finish_config(app: Flask) -> None:
    """Fill what the environment left empty with safe per-installation values."""
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        path = Path(app.instance_path) / "fieldapp.sqlite3"
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{path}"
    if not app.config.get("SECRET_KEY"):
        key_file = Path(app.instance_path) / "secret_key"
        if not key_file.exists():
            key_file.write_text(secrets.token_hex(32))
            key_file.chmod(0o600)
        app.config["SECRET_KEY"] = key_file.read_text().strip()
    https = app.config["HTTPS"]
    app.config.setdefault("SESSION_COOKIE_SECURE", https)
    app.config.setdefault("REMEMBER_COOKIE_SECURE", https)
    app.config["SESSION_COOKIE_SECURE"] = app.config["SESSION_COOKIE_SECURE"] or https
    app.config["PREFERRED_URL_SCHEME"] = "https" if https else "http"


def _register_blueprints(app: Flask) -> None:
    from fieldapp.accounts.routes import bp as accounts_bp
    from fieldapp.shell.routes import bp as shell_bp
    from fieldapp.sync.routes import bp as sync_bp

    app.register_blueprint(shell_bp)
    app.register_blueprint(accounts_bp)
    app.register_blueprint(sync_bp)
    # Push notifications, the inbox and the rule clock (+ CLI: vapid-keys, worker, rule-clock).
    from fieldapp.push.routes import bp as push_bp

    app.register_blueprint(push_bp)
    # Deliveries: the courier's day and the dispatcher's routes (+ its sync record types).
    from fieldapp.deliveries.routes import bp as deliveries_bp

    app.register_blueprint(deliveries_bp)
    # Guard duty: shifts, patrol rounds with QR checkpoints, incidents, gate, handover (+ types).
    from fieldapp.patrols.routes import bp as patrols_bp

    app.register_blueprint(patrols_bp)
    # Site visits, return visits and complaints (+ their sync record types and rule checks).
    from fieldapp.complaints.routes import bp as complaints_bp
    from fieldapp.visits.routes import bp as visits_bp

    app.register_blueprint(visits_bp)
    app.register_blueprint(complaints_bp)
    # Supervisor dashboard: today's board of the supervised teams and KPIs per worker.
    from fieldapp.dashboard.routes import bp as dashboard_bp

    app.register_blueprint(dashboard_bp)
    # Audit trail (hash-chained; /audit page) + CLI: audit-verify, backup, restore.
    from fieldapp import audit

    audit.init_app(app)
    # Extra record types or hooks, named in configuration (the test suite plugs its own
    # sync record types in this way): each module's init_app(app) is called.
    for name in app.config.get("EXTRA_MODULES", ()):
        importlib.import_module(name).init_app(app)


def _register_cli(app: Flask) -> None:
    from fieldapp import cli

    cli.init_app(app)
