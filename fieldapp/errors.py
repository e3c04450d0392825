"""Error pages in the user's language, JSON errors for the API, never a stack trace."""

from typing import NoReturn

from flask import Flask, abort, jsonify, make_response, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def _messages() -> dict[int, str]:
    return {
        400: _("The request could not be understood. Please go back and try again."),
        401: _("Please log in first."),
        403: _("You do not have access to this page."),
        404: _("This page does not exist."),
        405: _("This action is not allowed here."),
        413: _("The upload is too large."),
        429: _("Too many attempts. Please wait a few minutes and try again."),
        500: _("Something went wrong on our side. What you saved is safe; please try again."),
        503: _("The service is temporarily unavailable. Please try again shortly."),
    }


def error_response(code: int, message: str | None = None, reason: str | None = None):
    message = message or _messages().get(code, _messages()[500])
    if wants_json():
        return jsonify(error=reason or str(code), message=message), code
    return render_template("errors/error.html", code=code, message=message), code


def abort_with(code: int, message: str, reason: str) -> NoReturn:
    """Stop the request with a readable error (JSON for the API, a page otherwise)."""
    abort(make_response(error_response(code, message, reason)))


def init_app(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_failed(error):
        return error_response(
            400,
            _("This form has expired or was not sent by fieldapp. Reload the page and try again."),
            "csrf",
        )

    @app.errorhandler(HTTPException)
    def http_error(error):
        return error_response(error.code or 500, reason=error.name.lower().replace(" ", "_"))

    @app.errorhandler(Exception)
    def unexpected_error(error):
        app.logger.exception("unhandled error on %s", request.path)
        return error_response(500, reason="server_error")
