"""``neurolysis serve [--host 127.0.0.1] [--port 8000] [--token T] [--store PATH_OR_URL] [--workers N] [--uploads DIR]``.

Argparse only at import; FastAPI and uvicorn are imported when the server starts. Everything is
checked before it starts (one line, exit 2): a host beyond this machine needs a token (``--token``
or ``NEUROLYSIS_TOKEN``), the port and worker count their ranges, the store must open, the uploads
folder must be a folder (or not exist yet).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import sys
from pathlib import Path

from neurolysis.store.command import add_store_argument
from neurolysis.validation import ValidationError, check_range

TOKEN_ENV = "NEUROLYSIS_TOKEN"
PORT_RANGE = (1, 65535)
WORKERS_RANGE = (1, 64)
MIN_TOKEN_CHARS = 8


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``serve`` subcommand's options."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; any other than loopback needs a token)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    parser.add_argument("--token", help=f"require this token on every request (Authorization: Bearer T, or open the page once with ?token=T); default ${TOKEN_ENV}")
    add_store_argument(parser)
    parser.add_argument("--workers", type=int, default=1, help="processes solving jobs at once (default 1; others queue)")
    parser.add_argument("--uploads", metavar="DIR", help="folder of uploaded scans (default: uploads beside an SQLite store's file, else in the user data folder)")


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or ``localhost``."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def checked_token(host: str, token: str | None) -> str | None:
    """The token to require (None on loopback without one); raises for a non-loopback host without one."""
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise ValidationError(f"serve --token = <{len(token)} characters>: at least {MIN_TOKEN_CHARS} characters")
    if token is None and not is_loopback(host):
        raise ValidationError(f"serve --host = {host!r}: not a loopback address; give a token (--token or {TOKEN_ENV}) to serve beyond this machine")
    return token


def check_can_listen(host: str, port: int) -> None:
    """Raise (one line) when ``host:port`` cannot be bound: in use, or not an address of this machine."""

    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(infos[0][4])
    except OSError as error:
        raise ValidationError(f"serve --host/--port = {host}:{port}: cannot listen there ({error.strerror or error})") from None


def checked_uploads(path: str | None) -> str | None:
    """The uploads folder given: a folder, or a path where one can be made at the first upload."""
    if path is None:
        return None

    folder = Path(path).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ValidationError(f"serve --uploads = {path!r}: not a folder")
    return str(folder)


def run(args: argparse.Namespace) -> int:
    """Check the options, open the store, then serve until interrupted (Ctrl-C)."""
    token = checked_token(args.host, args.token if args.token is not None else (os.environ.get(TOKEN_ENV) or None))
    check_range("serve --port", args.port, *PORT_RANGE)
    check_range("serve --workers", args.workers, *WORKERS_RANGE)
    uploads = checked_uploads(getattr(args, "uploads", None))
    from neurolysis.store import open_store

    store = open_store(args.store)  # a bad location: one line, exit 2, before the server starts
    try:
        check_can_listen(args.host, args.port)
        import uvicorn

        from neurolysis.web.app import create_app

        app = create_app(store, token=token, workers=args.workers, uploads=uploads)
        host = f"[{args.host}]" if ":" in args.host else args.host
        print(f"neurolysis: serving the planner on http://{host}:{args.port}/ (API docs /api/docs; store {store.url}; uploads {app.state.uploads.root})"
              f"{'; token required' if token else ''}; Ctrl-C stops", file=sys.stderr)  # fmt: skip
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    finally:
        store.close()
    return 0


__all__ = ["add_arguments", "checked_token", "checked_uploads", "is_loopback", "run"]
