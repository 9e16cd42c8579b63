"""Where the case store lives: the default location and the check of a ``--store`` value.

Standard library only (platformdirs is imported when the default location is asked for), so
the CLI can refuse a bad location at parse time, before any solve.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

from neurolysis.validation import ValidationError

ENVIRONMENT_VARIABLE = "NEUROLYSIS_STORE"
ALLOWED = "allowed: a file path, sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DB"
STORE_EXTRA_MISSING = "the case store needs the store extra: pip install 'neurolysis[store]'"
_PASSWORD = re.compile(r"^([a-z0-9+.-]+://[^:/@]*):[^@/]*@", re.IGNORECASE)
_PSYCOPG_HINT = {"postgresql", "postgres", "postgresql+psycopg2", "postgresql+pg8000", "postgresql+asyncpg"}


def masked(location: str) -> str:
    """``location`` with any password replaced by ``***`` (for messages and ``CaseStore.url``)."""
    return _PASSWORD.sub(r"\1:***@", str(location))


def default_store_location() -> str:
    """$NEUROLYSIS_STORE if set, else ``sqlite:///<user data folder>/cases.db``."""
    configured = os.environ.get(ENVIRONMENT_VARIABLE)
    if configured:
        return configured
    try:
        import platformdirs
    except ImportError:
        raise ValidationError(STORE_EXTRA_MISSING) from None
    return "sqlite:///" + str(Path(platformdirs.user_data_dir("neurolysis")) / "cases.db")


def _refuse(location: str, why: str) -> ValidationError:
    return ValidationError(f"store = {masked(location)!r}: {why}; {ALLOWED}")


def _check_sqlite_file(location: str, path: Path, create_folder: bool) -> None:
    if path.is_dir():
        raise _refuse(location, "is a directory; give a file name")
    if not path.parent.is_dir():
        if not create_folder:
            raise _refuse(location, f"directory {str(path.parent)!r} does not exist")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise _refuse(location, f"cannot create directory {str(path.parent)!r} ({error.strerror or error})") from None


def store_url(location: str | os.PathLike | None = None) -> str:
    """The SQLAlchemy URL of a store location, checked for its form (no connection is made).

    None: :func:`default_store_location` (its folder is created). A plain path is an SQLite file;
    ``sqlite:///PATH`` and ``postgresql+psycopg://...`` are taken as they are. Anything else,
    an in-memory database or a file in a missing directory raises ValidationError."""
    default = location is None and not os.environ.get(ENVIRONMENT_VARIABLE)  # only the user data folder is created
    if location is None:
        location = default_store_location()
    if isinstance(location, os.PathLike):
        location = os.fspath(location)
    if not isinstance(location, str) or not location.strip():
        raise _refuse(str(location), "empty")
    if "://" not in location:
        path = Path(location).expanduser()
        _check_sqlite_file(location, path, default)
        return "sqlite:///" + str(path.absolute())
    scheme = location.split("://", 1)[0].lower()
    if scheme == "sqlite":
        rest = location[len("sqlite://") :]
        if not rest.startswith("/") or rest in ("/", "/:memory:") or rest.startswith("/file:"):
            raise _refuse(location, "an in-memory or URI database keeps nothing between commands; give a file")
        _check_sqlite_file(location, Path(rest[1:].split("?", 1)[0]).expanduser(), default)
        return location
    if scheme == "postgresql+psycopg":
        parts = urlsplit(location)
        if not parts.hostname or not parts.path.strip("/"):
            raise _refuse(location, "needs a host and a database name")
        try:
            parts.port  # noqa: B018 - raises ValueError on a port that is not a number in range
        except ValueError:
            raise _refuse(location, "the port is not a number from 1 to 65535") from None
        return location
    if scheme in _PSYCOPG_HINT:
        raise _refuse(location, "PostgreSQL goes through the psycopg 3 driver: write postgresql+psycopg://")
    raise _refuse(location, f"unknown kind of database {scheme!r}")


__all__ = ["ALLOWED", "ENVIRONMENT_VARIABLE", "STORE_EXTRA_MISSING", "default_store_location", "masked", "store_url"]
