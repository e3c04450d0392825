"""The app factory, configuration, health check, security headers and error pages."""

from pathlib import Path

from fieldapp import create_app


def test_config_comes_from_environment_with_safe_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("FIELDAPP_INSTANCE", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("SECRET_KEY", raising=False)
    app = create_app()
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'fieldapp.sqlite3'}"
    # The generated secret is kept, so sessions survive a restart.
    assert len(app.config["SECRET_KEY"]) == 64
    assert create_app().config["SECRET_KEY"] == app.config["SECRET_KEY"]
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    assert app.config["SESSION_COOKIE_HTTPONLY"] and not app.config["SESSION_COOKIE_SECURE"]


def test_https_deployment_gets_secure_cookies_and_hsts(database_url, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")
    # TESTING keeps the in-process rule clock from starting (it would tick for the whole run).
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "HTTPS": True, "TESTING": True})
    assert app.config["SECRET_KEY"] == "from-the-environment"
    assert app.config["SESSION_COOKIE_SECURE"]
    response = app.test_client().get("/login")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_healthz_reports_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json["database"] == "ok"


def test_healthz_is_503_when_the_database_is_unreachable(tmp_path):
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/missing/dir/db.sqlite3", "TESTING": True}
    )
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json == {"status": "error", "database": "unreachable"}


def test_pages_carry_a_csp_without_inline_script(client):
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Strict-Transport-Security" not in response.headers  # plain http on a laptop
    assert "<script>" not in response.get_data(as_text=True)


def test_error_pages_speak_the_users_language(client):
    zh = client.get("/no-such-page", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    en = client.get("/no-such-page", headers={"Accept-Language": "en-GB"})
    assert zh.status_code == en.status_code == 404
    assert "页面不存在" in zh.get_data(as_text=True)
    assert "This page does not exist." in en.get_data(as_text=True)


def test_api_errors_are_json_not_html(client):
    response = client.get("/api/nothing-here", headers={"Accept-Language": "en"})
    assert response.status_code == 404
    assert response.json == {"error": "not_found", "message": "This page does not exist."}


def test_an_unexpected_error_shows_a_page_not_a_trace(app):
    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals")

    app.config["TESTING"] = False  # as in production: the handler, not the debugger
    response = app.test_client().get("/boom", headers={"Accept-Language": "en"})
    assert response.status_code == 500
    body = response.get_data(as_text=True)
    assert "secret internals" not in body and "Traceback" not in body
    assert "What you saved is safe" in body


def test_manifest_makes_the_app_installable(client):
    manifest = client.get("/manifest.webmanifest")
    assert manifest.mimetype == "application/manifest+json"
    data = manifest.json
    assert data["display"] == "standalone" and data["start_url"].startswith("/")
    sizes = {(icon["sizes"], icon["purpose"]) for icon in data["icons"]}
    assert {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")} <= sizes
    static = Path(__file__).resolve().parents[2] / "static"
    for icon in data["icons"]:
        _version, filename = icon["src"].removeprefix("/static/v/").split("/", 1)
        assert (static / filename).is_file()


def test_service_worker_is_served_from_the_root_with_a_versioned_precache(client):
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-cache"
    source = response.get_data(as_text=True)
    assert 'const VERSION = "' in source
    version = source.split('const VERSION = "', 1)[1].split('"', 1)[0]
    shell = ["css/app.css", "js/app.js", "vendor/htmx.min.js"]
    for url in ["/offline", *(f"/static/v/{version}/{name}" for name in shell)]:
        assert f'"{url}"' in source
    assert client.get("/offline").status_code == 200


def test_static_files_carry_their_version_and_are_cached_for_a_year(client):
    page = client.get("/login").get_data(as_text=True)
    version = client.get("/healthz").json["version"]
    script = f"/static/v/{version}/js/app.js"
    assert f'src="{script}"' in page
    response = client.get(script)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    # A page of an older release still finds its files, at their current version.
    old = client.get("/static/v/0123456789ab/js/app.js")
    assert old.status_code == 302 and old.headers["Location"].endswith(script)
    assert "immutable" not in old.headers.get("Cache-Control", "")
    # Modules import each other relatively, so the whole module graph stays on one version.
    assert '"/static/' not in client.get(f"/static/v/{version}/js/outbox.js").get_data(as_text=True)


def test_behind_a_reverse_proxy_the_phones_address_is_used(database_url):
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "TESTING": True, "PROXIES": 1})
    seen = {}

    @app.get("/_address")
    def address():
        from flask import request

        seen["address"], seen["scheme"] = request.remote_addr, request.scheme
        return ""

    app.test_client().get(
        "/_address", headers={"X-Forwarded-For": "10.1.2.3", "X-Forwarded-Proto": "https"}
    )
    assert seen == {"address": "10.1.2.3", "scheme": "https"}
