"""Errors raised by the rules package.

A ``RuleViolation`` means "the regulations refuse this", not "the program is broken": the web
layer catches it, translates ``code`` into the user's language and shows it. Programming errors
(a naive datetime, a float amount of money) stay plain ``ValueError``/``TypeError``.
"""


class RuleViolation(ValueError):
    """A request the regulations do not allow.

    ``code`` is a stable, dotted identifier (e.g. ``"complaint.close_without_root_cause"``)
    that the web layer maps to a translated message; never change an existing code, because
    translations and tests key on it. ``message`` is an English explanation for logs and tests.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"RuleViolation(code={self.code!r}, message={self.message!r})"
