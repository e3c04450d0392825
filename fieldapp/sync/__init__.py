"""The sync engine: one mechanism that brings every kind of field record from the phone.

A domain registers its record types (``registry.register``) at start-up: a name, a payload
schema, whether it is an append-only fact or a versioned thing with field ownership, and the
service function that applies it. The engine does the rest: ordering, exactly-once, savepoints,
readable rejections, conflicts, files, and the pull of what changed for a user.
See docs/sync-protocol.md.
"""
