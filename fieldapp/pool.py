"""Pooled database connections: one the server closed is replaced before use, at no cost.

A pooled PostgreSQL connection the server dropped while it sat idle (a restart, a failover,
``pg_terminate_backend``) would fail the next request with a 500. SQLAlchemy's
``pool_pre_ping`` prevents that with a ``SELECT 1`` round trip at every checkout, i.e. at every
request (measured: 7-9 % of the sync pushes' p95 under load, docs/performance.md). A server
that closes a connection says so at once (an error message, then end of file), so an idle
connection with anything to read has been closed: looking at its socket answers without a
round trip, and the pool then opens a new one. A peer gone without a word (a cut cable) is not
seen by this, nor quickly by a ping: that waits for TCP either way.
"""

import select

from sqlalchemy import event, exc
from sqlalchemy.pool import Pool


@event.listens_for(Pool, "checkout")
def _replace_if_closed_by_server(dbapi_connection, _record, _proxy) -> None:
    fileno = getattr(dbapi_connection, "fileno", None)
    if fileno is None:
        return  # SQLite: a file, not a socket
    try:
        readable, _, _ = select.select([fileno()], [], [], 0)
    except Exception:  # closed on this side already (psycopg raises its own error)
        raise exc.DisconnectionError("the connection is closed") from None
    if readable:
        raise exc.DisconnectionError("the server closed the connection while it was idle")
