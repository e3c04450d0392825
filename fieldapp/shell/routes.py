"""The pages every user sees: the role's home, and what makes the app installable offline."""

import json
import re
from pathlib import Path

from flask import (
    Blueprint,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template,
    send_from_directory,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import text

from fieldapp.extensions import db
from fieldapp.models import Site
from fieldapp.shell.pwa import shell_assets

bp = Blueprint("shell", __name__)

THEME_COLOUR = "#0b5cad"

# ``import … from "./sender.js"`` in static/js/sw.js: served from the site root, the worker
# would look for /sender.js. Its relative imports name the modules next to it in static/js.
RELATIVE_IMPORT = re.compile(r"""(\bfrom\s*["'])\./""")


@bp.get("/")
@login_required
def home():
    """The home screen: the tiles of the current user's role."""
    sites = []
    if current_user.is_worker and current_user.team_id:
        sites = db.session.scalars(
            db.select(Site).where(Site.team_id == current_user.team_id).order_by(Site.name)
        ).all()
    return render_template("shell/home.html", user=current_user, sites=sites)


@bp.get("/offline")
def offline():
    """Shown by the service worker when a page was never opened online on this phone."""
    return render_template("shell/offline.html")


@bp.get("/manifest.webmanifest")
def manifest():
    """The web app manifest: name, icons and full-screen display for 'Add to home screen'."""
    icons = [
        {
            "src": url_for("static", filename="icons/icon-192.png"),
            "sizes": "192x192",
            "type": "image/png",
            "purpose": "any",
        },
        {
            "src": url_for("static", filename="icons/icon-512.png"),
            "sizes": "512x512",
            "type": "image/png",
            "purpose": "any",
        },
        {
            "src": url_for("static", filename="icons/icon-maskable-512.png"),
            "sizes": "512x512",
            "type": "image/png",
            "purpose": "maskable",
        },
    ]
    body = {
        "id": "/",
        "name": _("fieldapp — field work"),
        "short_name": "fieldapp",
        "description": _("Deliveries, patrols and site visits, online or offline."),
        "start_url": "/?source=pwa",
        "scope": "/",
        "display": "standalone",
        "orientation": "portrait",
        "theme_color": THEME_COLOUR,
        "background_color": "#ffffff",
        "lang": "zh-CN",
        "icons": icons,
    }
    return Response(json.dumps(body, ensure_ascii=False), mimetype="application/manifest+json")


@bp.get("/sw.js")
def service_worker():
    """The service worker, from the site root so its scope covers every page."""
    urls, version = shell_assets(current_app.static_folder, current_app.config["RELEASE"])
    precache = ["/offline", "/manifest.webmanifest", *urls]
    source = Path(current_app.static_folder, "js", "sw.js").read_text(encoding="utf-8")
    # A module worker: its imports come from this release's versioned (and precached) URLs.
    source = RELATIVE_IMPORT.sub(rf"\g<1>/static/v/{version}/js/", source)
    prelude = f"const VERSION = {json.dumps(version)};\nconst PRECACHE = {json.dumps(precache)};\n"
    response = Response(prelude + source, mimetype="text/javascript")
    # The browser must always ask for a new worker; the files it caches carry the version.
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Service-Worker-Allowed"] = "/"
    return response


@bp.get("/static/v/<version>/<path:filename>")
def versioned_static(version: str, filename: str):
    """A static file under its content version: the browser may keep it for a year."""
    current = shell_assets(current_app.static_folder, current_app.config["RELEASE"])[1]
    if version != current:
        # A page from an older release asks: send it to the file as it is now.
        return redirect(url_for("static", filename=filename))
    response = send_from_directory(current_app.static_folder, filename)
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response


@bp.get("/healthz")
def healthz():
    """For load balancers: 200 when the database answers, 503 when it does not."""
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:  # any driver error means the same thing to a load balancer
        current_app.logger.exception("health check failed")
        return jsonify(status="error", database="unreachable"), 503
    return jsonify(
        status="ok",
        database="ok",
        version=shell_assets(current_app.static_folder, current_app.config["RELEASE"])[1],
    )
