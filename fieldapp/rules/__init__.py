"""The service regulations as plain functions.

Nothing in this package imports Flask or SQLAlchemy: every function takes plain values
(datetimes, lists of scans, a working calendar) and returns plain values, so each rule can be
checked against a table of hand-computed cases. The rule IDs in docstrings (CMP-07, PAT-03, ...)
refer to ``shared/domain-rules.md``.
"""
