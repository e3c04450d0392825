"""Which language a page is shown in: the user's choice, else the phone's, else Chinese."""

from flask import Flask, current_app, request, session
from flask_babel import get_locale
from flask_login import current_user


def supported() -> tuple[str, ...]:
    return current_app.config["LANGUAGES"]


def normalise(tag: str | None) -> str | None:
    """Map a browser or form language tag (zh-CN, zh-Hans, en-GB) onto a supported locale."""
    if not tag:
        return None
    tag = tag.replace("-", "_").lower()
    if tag.startswith("zh"):
        return "zh_CN"
    if tag.startswith("en"):
        return "en"
    return None


def select_locale() -> str:
    if current_user and current_user.is_authenticated and current_user.locale:
        return current_user.locale
    chosen = normalise(session.get("lang"))
    if chosen:
        return chosen
    for tag, _quality in request.accept_languages:
        chosen = normalise(tag)
        if chosen:
            return chosen
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def select_timezone() -> str:
    """Times are stored in UTC and shown in the organisation's time zone."""
    if current_user and current_user.is_authenticated:
        return current_user.organisation.timezone
    return current_app.config["BABEL_DEFAULT_TIMEZONE"]


def html_lang() -> str:
    return "zh-CN" if str(get_locale()).startswith("zh") else "en"


def init_app(app: Flask) -> None:
    @app.context_processor
    def language_helpers():
        return {"html_lang": html_lang, "languages": supported()}
