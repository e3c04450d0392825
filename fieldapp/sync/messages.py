"""Reasons for a rejection, in words the user can act on, in the user's language."""

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

# Domains add the codes of their RuleViolations here (code -> lazy translated text).
RULE_MESSAGES: dict[str, object] = {}


def register_rule_messages(messages: dict[str, object]) -> None:
    RULE_MESSAGES.update(messages)


def rule_message(code: str, fallback: str) -> str:
    message = RULE_MESSAGES.get(code)
    return str(message) if message is not None else fallback


_FIELD_ERRORS = {
    "missing": _l("This field is required."),
    "string_too_short": _l("This field is required."),
    "string_too_long": _l("Too long: at most %(max_length)s characters."),
    "greater_than_equal": _l("Must be at least %(ge)s."),
    "greater_than": _l("Must be more than %(gt)s."),
    "less_than_equal": _l("Must be at most %(le)s."),
    "int_parsing": _l("Enter a whole number."),
    "int_type": _l("Enter a whole number."),
    "float_parsing": _l("Enter a number."),
    "datetime_parsing": _l("Enter a valid date and time."),
    "datetime_from_date_parsing": _l("Enter a valid date and time."),
    "timezone_aware": _l("Enter a date and time with its time zone."),
    "uuid_parsing": _l("Not a valid ID."),
    "enum": _l("Choose one of the options."),
    "literal_error": _l("Choose one of the options."),
    "string_pattern_mismatch": _l("This value has the wrong format."),
    "extra_forbidden": _l("This field is not expected here."),
}


def field_errors(errors: list[dict]) -> dict[str, str]:
    """Pydantic errors as ``{"field.path": "message"}``; the first error of a field wins."""
    result: dict[str, str] = {}
    for error in errors:
        path = ".".join(str(part) for part in error.get("loc", ())) or "payload"
        template = _FIELD_ERRORS.get(error.get("type"))
        if template is None:
            text = _("This value is not valid.")
        else:
            context = {
                k: v
                for k, v in (error.get("ctx") or {}).items()
                if isinstance(v, int | float | str)
            }
            try:
                text = str(template) % context if context else str(template)
            except (KeyError, TypeError, ValueError):
                text = str(template)
        result.setdefault(path, text)
    return result


def reason_text(reason: str) -> str:
    return {
        "invalid": _("Some fields need correcting."),
        "unknown_type": _(
            "This app version sent a kind of record the server does not know. "
            "Update the app, then send it again."
        ),
        "forbidden": _("Your role may not send this kind of record."),
        "id_reused": _("A different record was already sent with this ID."),
        "duplicate_record": _("This record was already received."),
        "stale_sequence": _("This record was numbered out of order. Send it again."),
        "sequence_gap": _("Records before this one have not arrived yet; they are sent first."),
        "server_error": _(
            "The server could not save this record. It is kept on this phone; send it again later."
        ),
        "conflict": _(
            "Part of this change clashes with an office change; a supervisor will decide."
        ),
    }.get(reason, _("This record was not accepted."))
