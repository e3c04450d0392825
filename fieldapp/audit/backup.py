"""Backup and restore of the database, one command each.

SQLite: the online backup API (``sqlite3.Connection.backup``), safe while the app is serving;
the backup is itself a SQLite file. PostgreSQL: ``pg_dump --format=custom`` and
``pg_restore --clean --if-exists`` (the client binaries must be on PATH and of the server's
major version or newer). When the database URL pins a schema with ``search_path`` (as the
test suite does), only that schema is dumped and restored.

Uploaded files (``FIELDAPP_FILES`` or the ``FIELDAPP_S3_BUCKET`` bucket) are not inside the
database: copy them too.
"""

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path
from urllib.parse import unquote

from sqlalchemy.engine import make_url


class BackupError(RuntimeError):
    pass


def backup(url: str, path: str | Path) -> Path:
    """Write a consistent copy of the database at ``url`` to ``path``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        source = sqlite3.connect(_sqlite_path(parsed))
        partial = target.with_name(target.name + ".partial")
        partial.unlink(missing_ok=True)
        copy = sqlite3.connect(partial)
        try:
            with copy:
                source.backup(copy)
        finally:
            copy.close()
            source.close()
        partial.replace(target)  # never leave a half-written file under the real name
        return target
    if parsed.get_backend_name() == "postgresql":
        args, env = _libpq(parsed)
        _run(
            [_binary("pg_dump"), "--format=custom", "--no-owner", "--no-acl", "-f", str(target)]
            + args,
            env,
        )
        return target
    raise BackupError(f"no backup method for {parsed.get_backend_name()}")


def restore(url: str, path: str | Path) -> None:
    """Replace the database at ``url`` with the backup at ``path``.

    Stop the web and worker processes first: a restore rewrites every table.
    """
    source_path = Path(path)
    if not source_path.is_file():
        raise BackupError(f"{source_path} does not exist")
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True)
        try:
            if source.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                raise BackupError(f"{source_path} is not a sound SQLite database")
            live = sqlite3.connect(_sqlite_path(parsed))
            try:
                source.backup(live)
            finally:
                live.close()
        except sqlite3.DatabaseError as error:
            raise BackupError(f"{source_path}: {error}") from error
        finally:
            source.close()
        return
    if parsed.get_backend_name() == "postgresql":
        args, env = _libpq(parsed)
        _run(
            [
                _binary("pg_restore"),
                "--clean",
                "--if-exists",
                "--no-owner",
                "--no-acl",
                "--single-transaction",
                "--exit-on-error",
            ]
            + args
            + [str(source_path)],
            env,
        )
        return
    raise BackupError(f"no restore method for {parsed.get_backend_name()}")


def _sqlite_path(parsed) -> str:
    if not parsed.database or parsed.database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return parsed.database


def _binary(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise BackupError(f"{name} is not installed (the PostgreSQL client tools are needed)")
    return found


def _libpq(parsed) -> tuple[list[str], dict]:
    """Connection arguments for pg_dump/pg_restore; the password goes in the environment.

    The URL's query (``sslmode``, ``options`` …) is kept: libpq reads the same parameters.
    """
    uri = parsed._replace(drivername="postgresql", password=None)
    args = ["--dbname", uri.render_as_string(hide_password=False)]
    env = {**os.environ}
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    schema = _search_path_schema(parsed.query.get("options"))
    if schema:
        args += ["--schema", schema]
    return args, env


def _search_path_schema(options) -> str | None:
    if isinstance(options, tuple):
        options = " ".join(options)
    if not options:
        return None
    for part in unquote(options).split():
        for prefix in ("-csearch_path=", "search_path="):
            if part.startswith(prefix):
                return part[len(prefix) :].split(",")[0].strip('"') or None
    return None


def _run(command: list[str], env: dict) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"{Path(command[0]).name} failed: {done.stderr.strip()[-2000:]}")
