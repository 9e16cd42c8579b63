"""A patient's scan uploaded to the web planner: its segmentation (label layers), the names of its
labels and an optional CT or MR, stored once by content and named in plans as ``upload:<id>/<file>``.

``POST /api/anatomy`` hands the files to :meth:`Uploads.add`: each is copied in chunks (hashed on
the way) into a fresh folder under ``<root>/.incoming``, zips are unpacked (a TotalSegmentator
folder, a DICOM series) within a byte and member budget, NRRD and MetaImage headers that name a
separate data file are refused (the reader would open that file), and the whole is read with
:func:`~neurolysis.anatomy.imaging.load.load_anatomy` and asked for its targets. Only then is the
folder renamed to ``<root>/<id>``; any refusal deletes it, so a refused upload stores nothing.
The id is the first 16 hex digits of the sha256 of the manifest (each file's stored name and
sha256, the names and which file is the image), so the same upload is stored once.

The server never reads a file a client names: a plan over HTTP names an upload's files only as
``upload:<id>/<file>`` (:meth:`Uploads.resolve`), where ``<file>`` is an entry of that upload's
manifest; the plan is then read with ``base_dir`` set to the upload's folder, and every path of
that folder in what goes back (outcome, report, messages) is written ``upload:<id>/`` again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import threading
import time
import uuid
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

import numpy as np
import platformdirs
import SimpleITK as sitk

from neurolysis.anatomy.imaging.landmarks import supported_targets
from neurolysis.anatomy.imaging.load import MAX_LAYERS, load_anatomy
from neurolysis.anatomy.imaging.names import names_choices
from neurolysis.planning.plan import plan_toml
from neurolysis.validation import ValidationError

MAX_UPLOAD_BYTES = 64 * 2**20
"""Largest ``POST /api/anatomy`` body (bytes): refused with 413 before it is read when its
Content-Length says more, else as soon as this many bytes have arrived."""
MAX_REQUEST_BYTES = 2**20
"""Largest body of any other request (a plan in JSON is a few kB)."""
MAX_UNZIPPED_BYTES = 512 * 2**20
"""Largest total size of the files unpacked from the zips of one upload."""
MAX_ZIP_MEMBERS = 4000
"""Most files in one zip (a TotalSegmentator folder has ~120 masks, a CT series ~100-1000 slices)."""
MAX_UPLOAD_VOXELS = 2**27
"""Largest volume of an uploaded file (512 x 512 x 512 voxels), read from its header before any voxel."""
ID_HEX = 16
UPLOAD_ID = re.compile(rf"[0-9a-f]{{{ID_HEX}}}")
UPLOAD_PREFIX = "upload:"
UPLOAD_PATH = re.compile(rf"{UPLOAD_PREFIX}([0-9a-f]{{{ID_HEX}}})/([A-Za-z0-9_][A-Za-z0-9._-]{{0,119}})")
LABEL_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha")
ZIP_SUFFIX = ".zip"
TABLE_SUFFIXES = (".ctbl", ".tsv", ".txt", ".csv")
TABLE = "table"
"""The ``names`` value meaning the uploaded names table."""
MANIFEST = "manifest.json"
INCOMING = ".incoming"
CHUNK_BYTES = 2**20
NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]")
MAX_NAME_CHARS = 120
ANATOMY_CACHE = 4
"""Uploads kept read in memory (summary, targets and viewer volumes are built from them)."""
DETACHED_NRRD = re.compile(rb"^\s*data\s*file\s*:", re.IGNORECASE | re.MULTILINE)
MHA_DATA_FILE = re.compile(rb"^\s*ElementDataFile\s*=\s*(\S+)", re.MULTILINE)
HEADER_BYTES = 65536
ANATOMY_FILE_FIELDS = ("segmentation", "names", "image")


def stored_name(filename: str | None, field: str, suffixes: tuple[str, ...]) -> str:
    """The name a client's file is stored under: its last path part, characters other than
    letters, digits, ``._-`` replaced by ``_``; it must end in one of ``suffixes``."""
    base = re.split(r"[\\/]", filename or "")[-1]
    name = NAME_CHARS.sub("_", base)[-MAX_NAME_CHARS:].lstrip(".")
    if not name or not name.lower().endswith(suffixes) or name.lower() in suffixes:
        raise ValidationError(f"{field} filename = {(filename or '')[:80]!r}: must end in {', '.join(suffixes)}")
    return name


def _sha256_copy(source: IO[bytes], target: Path) -> tuple[str, int]:
    """Copy a file object to ``target`` in chunks: (sha256, bytes)."""
    digest = hashlib.sha256()
    size = 0
    with target.open("xb") as out:
        while chunk := source.read(CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
    return digest.hexdigest(), size


def _unzip(archive: Path, folder: Path, field: str, budget: list[int]) -> int:
    """Unpack a zip's files (flat: each under its own last path part) into ``folder``; skipped:
    folders, ``__MACOSX`` and hidden files. ``budget`` [bytes left] is shared by one upload's zips."""
    try:
        with zipfile.ZipFile(archive) as z:
            members = [m for m in z.infolist() if not m.is_dir() and "__MACOSX" not in m.filename.split("/")
                       and not re.split(r"[\\/]", m.filename)[-1].startswith(".")]  # fmt: skip
            if not members:
                raise ValidationError(f"{field} = {archive.name!r}: an empty zip")
            if len(members) > MAX_ZIP_MEMBERS:
                raise ValidationError(f"{field} = {archive.name!r}: {len(members)} files; a zip holds at most {MAX_ZIP_MEMBERS}")
            if sum(m.file_size for m in members) > budget[0]:
                raise ValidationError(f"{field} = {archive.name!r}: unpacks to {sum(m.file_size for m in members)} bytes; at most {MAX_UNZIPPED_BYTES} bytes per upload")
            folder.mkdir()
            for m in members:
                name = NAME_CHARS.sub("_", re.split(r"[\\/]", m.filename)[-1])[-MAX_NAME_CHARS:].lstrip(".") or "file"
                target = folder / name
                if target.exists():
                    raise ValidationError(f"{field} = {archive.name!r}: two files named {name!r} (the zip's folders are flattened)")
                with z.open(m) as source, target.open("xb") as out:
                    while chunk := source.read(CHUNK_BYTES):
                        budget[0] -= len(chunk)
                        if budget[0] < 0:
                            raise ValidationError(f"{field} = {archive.name!r}: unpacks to more than {MAX_UNZIPPED_BYTES} bytes per upload")
                        out.write(chunk)
            return len(members)
    except ValidationError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, EOFError, ValueError) as error:
        raise ValidationError(f"{field} = {archive.name!r}: not a readable zip ({str(error).splitlines()[0][:120] if str(error) else type(error).__name__})") from None


def _files_of(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]


def check_volume_file(path: Path, field: str) -> None:
    """Refuse what would make the readers open another file or claim gigabytes: an NRRD header
    naming a separate data file, a MetaImage whose data are not in it, more than
    :data:`MAX_UPLOAD_VOXELS` voxels in a header."""
    lower = path.name.lower()
    if lower.endswith((".nrrd", ".nhdr")):
        with path.open("rb") as handle:
            header = handle.read(HEADER_BYTES).split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
        if DETACHED_NRRD.search(header):
            raise ValidationError(f"{field} = {path.name!r}: its header names a separate data file (a detached NRRD); upload one .nrrd file with the voxels in it")
    if lower.endswith((".mha", ".mhd")):
        with path.open("rb") as handle:
            found = MHA_DATA_FILE.search(handle.read(HEADER_BYTES))
        if not found or found.group(1) != b"LOCAL":
            raise ValidationError(f"{field} = {path.name!r}: ElementDataFile is not LOCAL (the voxels are in another file); upload one .mha file with the voxels in it")
    if lower.endswith((*LABEL_SUFFIXES, ".nhdr", ".mhd")):

        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        previous = sitk.ProcessObject.GetGlobalWarningDisplay()
        sitk.ProcessObject.SetGlobalWarningDisplay(False)
        try:
            reader.ReadImageInformation()
        except RuntimeError:
            raise ValidationError(f"{field} = {path.name!r}: not a readable image or label volume (NIfTI, NRRD, MetaImage)") from None
        finally:
            sitk.ProcessObject.SetGlobalWarningDisplay(previous)
        voxels = int(np.prod(reader.GetSize(), dtype=np.int64)) * max(1, int(reader.GetNumberOfComponents()))
        if voxels > MAX_UPLOAD_VOXELS:
            raise ValidationError(f"{field} = {path.name!r}: {tuple(reader.GetSize())} holds {voxels} voxels; an upload holds at most {MAX_UPLOAD_VOXELS} per file (crop or resample it)")


@dataclass(frozen=True)
class Upload:
    """A stored upload: ``id``, its ``folder`` and its ``manifest`` (``segmentation``: stored names
    in layer order; ``names``: one spec per layer, a built-in keyword or the stored table's name,
    or None; ``image``: a stored name or None; ``table``; ``files``: name -> sha256, bytes, field,
    the client's file name)."""

    id: str
    folder: Path
    manifest: dict

    def path(self, name: str) -> str:
        return f"{UPLOAD_PREFIX}{self.id}/{name}"

    def anatomy(self, shown: bool = True) -> dict:
        """The plan's ``[anatomy]`` files: ``upload:<id>/<file>`` (``shown``) or names in the folder."""
        m = self.manifest
        name = self.path if shown else (lambda n: n)
        segmentation = [name(s) for s in m["segmentation"]]
        out: dict[str, Any] = {"segmentation": segmentation[0] if len(segmentation) == 1 else segmentation}
        if m["names"]:
            names = [name(n) if n == m.get("table") else n for n in m["names"]]
            out["names"] = names[0] if len(set(names)) == 1 else names
        if m["image"]:
            out["image"] = name(m["image"])
        return out

    def shown_anatomy(self, anatomy: dict) -> dict:
        """An ``[anatomy]`` section read in the folder (names of its files) written back with ``upload:<id>/``."""
        files = self.manifest["files"]
        out = dict(anatomy)
        for key in ANATOMY_FILE_FIELDS:
            value = out.get(key)
            if isinstance(value, str) and value in files:
                out[key] = self.path(value)
            elif isinstance(value, list | tuple):
                out[key] = [self.path(v) if isinstance(v, str) and v in files else v for v in value]
        return out

    def hide(self, text: str) -> str:
        """``text`` with every path of the upload's folder written ``upload:<id>/...`` (the server's folders stay its own)."""
        folder = str(self.folder)
        return text.replace(folder + os.sep, f"{UPLOAD_PREFIX}{self.id}/").replace(folder, f"{UPLOAD_PREFIX}{self.id}")


class Uploads:
    """The uploads under ``root`` (created at the first upload; None: a server that keeps none): add,
    get, resolve plan paths, and the anatomies read from them (the newest :data:`ANATOMY_CACHE` kept in memory)."""

    def __init__(self, root: str | Path | None):
        self.root = Path(root).expanduser().absolute() if root is not None else None
        self._lock = threading.Lock()
        self._read: OrderedDict[str, tuple] = OrderedDict()

    def stored(self) -> list[str]:
        """The ids of the stored uploads."""
        if self.root is None or not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if UPLOAD_ID.fullmatch(p.name) and (p / MANIFEST).is_file())

    def get(self, upload_id: str, field: str = "upload", value: str | None = None) -> Upload:
        """The stored upload ``upload_id``, else a one-line error (LookupError) naming ``field`` (= ``value``, default the id)."""
        folder = self.root / upload_id if self.root is not None and isinstance(upload_id, str) and UPLOAD_ID.fullmatch(upload_id) else None
        if folder is None or not (folder / MANIFEST).is_file():
            raise LookupError(f"{field} = {str(value if value is not None else upload_id)[:120]!r}: no such upload on this server (POST /api/anatomy stores one; "
                              "the same files uploaded again have the same id)")  # fmt: skip
        return Upload(upload_id, folder, json.loads((folder / MANIFEST).read_text(encoding="utf-8")))

    def add(self, segmentation: list[tuple[str | None, IO[bytes]]], names: list[str], table: tuple[str | None, IO[bytes]] | None,
            image: tuple[str | None, IO[bytes]] | None) -> tuple[Upload, bool]:  # fmt: skip
        """Store an upload (module docstring): (the upload, whether it is new). Raises a one-line
        ValidationError (and stores nothing) when a file is refused or the anatomy cannot be read."""

        if self.root is None:
            raise ValidationError("segmentation: this server keeps no uploads")
        if not segmentation:
            raise ValidationError("segmentation = []: upload at least one label map (NIfTI, NRRD, .seg.nrrd) or a zipped TotalSegmentator folder")
        if len(segmentation) > MAX_LAYERS:
            raise ValidationError(f"segmentation: {len(segmentation)} files; at most {MAX_LAYERS} label layers")
        names = [n.strip() for n in names if isinstance(n, str) and n.strip()]
        if table is not None and not names:
            names = [TABLE]
        for i, n in enumerate(names):
            if n != TABLE and n not in names_choices():
                raise ValidationError(f"names[{i}] = {str(n)[:80]!r}: allowed values are {', '.join(names_choices()[:3])}, totalsegmentator:<task>, embedded, "
                                      f"or {TABLE} (the uploaded names_table)")  # fmt: skip
        if len(names) not in (0, 1, len(segmentation)):
            raise ValidationError(f"names: {len(names)} values for {len(segmentation)} segmentation files; give one, or one per file")
        if TABLE in names and table is None:
            raise ValidationError(f"names = {TABLE!r}: upload the table as names_table")
        if table is not None and TABLE not in names:
            raise ValidationError(f"names_table: uploaded, but no names value is {TABLE!r} (names = {names!r})")

        plan: list[tuple[str, str, IO[bytes]]] = []  # (field, stored name, source)
        for i, (filename, source) in enumerate(segmentation):
            field = "segmentation" if len(segmentation) == 1 else f"segmentation[{i}]"
            plan.append((field, stored_name(filename, field, (*LABEL_SUFFIXES, ZIP_SUFFIX)), source))
        if table is not None:
            plan.append(("names_table", stored_name(table[0], "names_table", TABLE_SUFFIXES), table[1]))
        if image is not None:
            plan.append(("image", stored_name(image[0], "image", (*LABEL_SUFFIXES, ZIP_SUFFIX)), image[1]))
        final = [name[: -len(ZIP_SUFFIX)] if name.lower().endswith(ZIP_SUFFIX) else name for _, name, _ in plan]
        clash = next((n for n in final if final.count(n) > 1 or n == MANIFEST), None)
        if clash is not None:
            later = len(final) - 1 - final[::-1].index(clash)
            raise ValidationError(f"{plan[later][0]} filename = {plan[later][1]!r}: another file of the upload has the same name {clash!r}; rename one")

        incoming = self.root / INCOMING / uuid.uuid4().hex
        incoming.mkdir(parents=True)
        try:
            files: dict[str, dict] = {}
            budget = [MAX_UNZIPPED_BYTES]
            for (field, name, source), stored in zip(plan, final, strict=True):
                target = incoming / name
                sha, size = _sha256_copy(source, target)
                if size == 0:
                    raise ValidationError(f"{field} = {name!r}: an empty file")
                entry = {"field": field, "sha256": sha, "bytes": size, "uploaded_as": name}
                if stored != name:
                    entry["unzipped_files"] = _unzip(target, incoming / stored, field, budget)
                    target.unlink()
                for f in _files_of(incoming / stored):
                    check_volume_file(f, field)
                files[stored] = entry
            segs = final[: len(segmentation)]
            manifest = {
                "segmentation": segs,
                "names": [final[len(segmentation)] if n == TABLE else n for n in names] or None,
                "table": final[len(segmentation)] if table is not None else None,
                "image": final[-1] if image is not None else None,
                "files": files,
            }
            identity = json.dumps({k: manifest[k] for k in ("segmentation", "names", "table", "image")} | {"sha256": {k: v["sha256"] for k, v in files.items()}}, sort_keys=True)
            upload_id = hashlib.sha256(identity.encode()).hexdigest()[:ID_HEX]
            folder = self.root / upload_id
            if (folder / MANIFEST).is_file():
                return self.get(upload_id), False
            staged = Upload(upload_id, incoming, manifest)  # read where it is: its paths are written upload:<id>/ already
            try:
                read = self._load(staged)
            except ValidationError as error:
                raise ValidationError(str(error).replace(str(incoming) + os.sep, "").replace(str(incoming), ".")) from None
            except (TypeError, ValueError, RuntimeError, IndexError, KeyError, OverflowError, MemoryError) as error:  # what no check of the readers expected
                first = str(error).splitlines()[0][:160].replace(str(incoming) + os.sep, "") if str(error) else ""
                raise ValidationError(f"segmentation: cannot be read ({type(error).__name__}{': ' + first if first else ''})") from None
            manifest |= {"id": upload_id, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            (incoming / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
            try:
                incoming.rename(folder)
            except OSError:  # stored meanwhile by an identical upload
                if not (folder / MANIFEST).is_file():
                    raise
                return self.get(upload_id), False
            upload = Upload(upload_id, folder, manifest)
            self._remember(upload_id, read)
            return upload, True
        finally:
            shutil.rmtree(incoming, ignore_errors=True)

    def _load(self, upload: Upload) -> tuple:
        """(SegmentedAnatomy, its summary with ``upload:<id>/`` paths, supported targets) of an upload."""

        a = upload.anatomy(shown=False)
        segmentation = a["segmentation"]
        names = a.get("names")
        anatomy = load_anatomy(segmentation, names, a.get("image"), None, upload.folder)
        targets = [c.summary() for c in supported_targets(anatomy)]
        summary = json.loads(upload.hide(json.dumps(anatomy.summary(), ensure_ascii=False)))
        return anatomy, summary, targets

    def _remember(self, upload_id: str, read: tuple) -> None:
        with self._lock:
            self._read[upload_id] = read
            self._read.move_to_end(upload_id)
            while len(self._read) > ANATOMY_CACHE:
                self._read.popitem(last=False)

    def read(self, upload: Upload) -> tuple:
        """(SegmentedAnatomy, summary, targets) of a stored upload, read once and kept (newest :data:`ANATOMY_CACHE`)."""
        with self._lock:
            found = self._read.get(upload.id)
            if found is not None:
                self._read.move_to_end(upload.id)
                return found
        read = self._load(upload)
        self._remember(upload.id, read)
        return read

    def resolve(self, anatomy: dict) -> tuple[dict, Upload | None]:
        """An ``[anatomy]`` section over HTTP: its file fields (``segmentation``, ``names`` where not
        a built-in keyword, ``image``) must be ``upload:<id>/<file>`` of one stored upload, a file of
        its manifest; they come back as names in the upload's folder, with the upload (None when the
        section names no file). Raises ValidationError (a form that is not allowed) or LookupError
        (no such upload); the message names the field."""

        out = dict(anatomy)
        found: Upload | None = None
        for key in ANATOMY_FILE_FIELDS:
            value = anatomy.get(key)
            if value is None:
                continue
            values = value if isinstance(value, list | tuple) else [value]
            resolved = []
            for i, v in enumerate(values):
                where = f"anatomy.{key}" if not isinstance(value, list | tuple) else f"anatomy.{key}[{i}]"
                if key == "names" and isinstance(v, str) and v in names_choices():
                    resolved.append(v)
                    continue
                match = UPLOAD_PATH.fullmatch(v) if isinstance(v, str) else None
                if match is None:
                    if not isinstance(v, str):
                        resolved.append(v)  # not text: the plan's own check names it
                        continue
                    raise ValidationError(f"{where} = {v[:80]!r}: over HTTP a file is one of an upload, {UPLOAD_PREFIX}<id>/<file> (POST /api/anatomy); "
                                          "the server reads no other file")  # fmt: skip
                upload_id, name = match.groups()
                if found is not None and found.id != upload_id:
                    raise ValidationError(f"{where} = {v!r}: another upload than {found.id!r}; one plan reads the files of one upload")
                found = found or self.get(upload_id, where, v)
                if name not in found.manifest["files"]:
                    raise ValidationError(f"{where} = {v!r}: upload {upload_id} has no file {name!r}; its files are {', '.join(sorted(found.manifest['files']))}")
                resolved.append(name)
            out[key] = resolved if isinstance(value, list | tuple) else resolved[0]
        return out, found


def hide_paths(text: str, upload: Upload | None) -> str:
    return text if upload is None else upload.hide(text)


def shown_plan(plan, upload: Upload | None) -> tuple[dict, str]:
    """(sections, TOML) of a Plan as the client writes it: an upload's files as ``upload:<id>/<file>``."""


    if upload is not None:
        anatomy = upload.shown_anatomy(plan.as_dict()["anatomy"])
        plan = replace(plan, anatomy=replace(plan.anatomy, **{k: anatomy[k] for k in ANATOMY_FILE_FIELDS if k in anatomy}))
    return plan.as_dict(), plan_toml(plan)


def upload_job(plan, upload: Upload | None) -> dict | None:
    """What a worker needs to read a plan on an upload and show it back: the id, the folder and the shown ``[anatomy]``."""
    if upload is None:
        return None
    return {"id": upload.id, "folder": str(upload.folder), "anatomy": shown_plan(plan, upload)[0]["anatomy"]}


def default_uploads_folder(store_url: str | None) -> Path:
    """``uploads`` beside an SQLite store's file, else in the user data folder."""
    if store_url and store_url.startswith("sqlite:///"):
        return Path(store_url[len("sqlite:///") :].split("?", 1)[0]).expanduser().absolute().parent / "uploads"

    return Path(platformdirs.user_data_dir("neurolysis")) / "uploads"


def manifest_files(upload: Upload) -> list[dict]:
    """The upload's files for its JSON view: name, field, bytes, sha256, the client's file name."""
    return [{"name": name, **entry, "path": upload.path(name)} for name, entry in upload.manifest["files"].items()]


__all__ = ["MAX_REQUEST_BYTES", "MAX_UPLOAD_BYTES", "TABLE", "UPLOAD_PATH", "Upload", "Uploads", "check_volume_file", "default_uploads_folder", "hide_paths", "shown_plan", "stored_name", "upload_job"]
