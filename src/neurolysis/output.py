"""Files the commands write: checked before any solve, written atomically.

A user's output path is checked (one-line ``ValidationError``) before a long computation, and
written through a temporary file in the same directory renamed into place, so a failure
leaves no partial file and an existing file unchanged.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from neurolysis.validation import ValidationError


def print_json(obj) -> int:
    """One JSON object on stdout (the machine-readable output of every command); returns 0."""
    json.dump(obj, sys.stdout)
    sys.stdout.write("\n")
    return 0


def check_output_path(path, field: str = "output") -> Path:
    """The output path, checked writable (raises ValidationError in one line naming ``field``)."""
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        raise ValidationError(f"{field} = {str(path)!r}: is a directory; give a file name")
    if not parent.is_dir():
        raise ValidationError(f"{field} = {str(path)!r}: directory {str(parent)!r} does not exist")
    try:
        with tempfile.NamedTemporaryFile(dir=parent, prefix=f".{p.name}.", suffix=".check"):
            pass
    except OSError as exc:
        raise ValidationError(f"{field} = {str(path)!r}: directory {str(parent)!r} is not writable ({exc.strerror or exc})") from exc
    if p.exists() and not os.access(p, os.W_OK):
        raise ValidationError(f"{field} = {str(path)!r}: the file exists and is not writable")
    return p


def write_atomic(path, write: Callable[[Path], object], field: str = "output") -> Path:
    """Write ``path`` through ``write(temporary_path)``: a temporary file in the same directory,
    flushed to disk, then renamed into place (a failure leaves no partial file)."""
    p = check_output_path(path, field)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, p)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise ValidationError(f"{field} = {str(path)!r}: cannot write ({exc.strerror or exc})") from exc
        raise
    return p


def write_text_atomic(text: str, path, field: str = "output") -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`write_atomic`)."""
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), field)
