"""Read segmentations and images with SimpleITK: NIfTI, NRRD (and Slicer's ``.seg.nrrd``),
a TotalSegmentator folder of one mask per structure, and DICOM series.

Every failure is a one-line :class:`~neurolysis.validation.ValidationError` naming the file
and what is wrong; the header is read (and its size checked) before any voxel.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType

import numpy as np

from neurolysis.validation import ValidationError

from .volume import MAX_VOXELS, NIFTI_SUFFIXES, Grid, Image, Segmentation, grid_from_itk, integer_labels, native_frame

MASK_SUFFIXES = (*NIFTI_SUFFIXES, ".nrrd")
SEGMENT_KEY = re.compile(r"^Segment(\d+)_(Name|LabelValue|Layer)$")
DICOM_MODALITY_TAG = "0008|0060"
IMAGE_GRID_TOLERANCE_MM = 1e-3


def _sitk():
    import SimpleITK as sitk  # heavy (about 0.3 s): imported when a scan is read

    return sitk


def _quiet(call: Callable):
    """Run an ITK call with its warnings off (ITK prints them to stderr, not as exceptions)."""
    sitk = _sitk()
    previous = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    try:
        return call()
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(previous)


def existing(field: str, path) -> Path:
    """``path`` as a Path that exists (file or folder), else a one-line error naming ``field``."""
    if path is None:
        raise ValidationError(f"{field} = None: a file or folder path is required")
    p = Path(path)
    try:
        found = p.exists()
    except OSError as exc:  # a name longer than the file system allows
        raise ValidationError(f"{field} = {str(p)!r}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    if not found:
        raise ValidationError(f"{field} = {str(p)!r}: no such file or folder")
    return p


def _check_nifti_affine(path: Path, where: str) -> None:
    """A NIfTI's sform and qform finite where their codes say they are used: ITK 5.4 never returns
    from reading an sform holding inf or NaN, so the header is read first with nibabel."""
    if not path.name.lower().endswith(NIFTI_SUFFIXES):
        return
    import nibabel

    try:
        header = nibabel.load(str(path)).header
    except Exception:  # noqa: BLE001 - any header nibabel cannot parse is ITK's to refuse
        return
    used = []
    if int(header["sform_code"]) > 0:
        used += [header["srow_x"], header["srow_y"], header["srow_z"]]
    if int(header["qform_code"]) > 0:
        used += [header["pixdim"][1:4], [header[k] for k in ("quatern_b", "quatern_c", "quatern_d", "qoffset_x", "qoffset_y", "qoffset_z")]]
    if used and not np.all(np.isfinite(np.concatenate([np.asarray(u, float).ravel() for u in used]))):
        raise ValidationError(f"{where} = {str(path)!r}: the NIfTI header's voxel-to-scanner transform (sform/qform) holds inf or NaN; fix the header (e.g. with nibabel)")


def _header(path: Path, where: str):
    """An ITK reader with the header read and the voxel count checked (no voxel read yet)."""
    _check_nifti_affine(path, where)
    sitk = _sitk()
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        _quiet(reader.ReadImageInformation)
    except RuntimeError:
        raise ValidationError(f"{where} = {str(path)!r}: not a readable image or label volume (NIfTI, NRRD, ...)") from None
    size = tuple(int(n) for n in reader.GetSize())
    voxels = int(np.prod(size, dtype=np.int64)) * max(1, int(reader.GetNumberOfComponents()))
    if voxels > MAX_VOXELS:
        raise ValidationError(f"{where} = {str(path)!r}: {size} holds {voxels} voxels, more than the supported {MAX_VOXELS} (crop or resample it)")
    return reader


def _read(path: Path, where: str):
    reader = _header(path, where)
    if _uncompressed(path) and path.stat().st_size < _voxel_bytes(reader):
        raise ValidationError(f"{where} = {str(path)!r}: {path.stat().st_size} bytes, fewer than its voxels need ({_voxel_bytes(reader)}): truncated or damaged file")
    try:
        return _quiet(reader.Execute)
    except RuntimeError:
        raise ValidationError(f"{where} = {str(path)!r}: the header reads but the voxel data do not (truncated or damaged file)") from None


NRRD_ENCODING = re.compile(rb"^encoding:\s*(\S+)\s*$", re.MULTILINE)


def _uncompressed(path: Path) -> bool:
    """A file whose voxels are stored raw in it: a ``.nii``, or an NRRD whose header says ``encoding: raw``."""
    name = path.name.lower()
    if name.endswith(".nii"):
        return True
    if name.endswith(".nrrd"):
        with path.open("rb") as handle:
            found = NRRD_ENCODING.search(handle.read(8192).split(b"\n\n", 1)[0])
        return bool(found and found.group(1).lower() == b"raw")
    return False


def _voxel_bytes(reader) -> int:
    """Bytes of an uncompressed file's voxels (ITK pads a short file with zeros instead of failing)."""
    sitk = _sitk()
    size = int(np.prod(reader.GetSize(), dtype=np.int64)) * max(1, int(reader.GetNumberOfComponents()))
    item = np.dtype(sitk.GetArrayViewFromImage(sitk.Image([1] * reader.GetDimension(), reader.GetPixelID())).dtype).itemsize
    return size * item


def _metadata(image) -> dict[str, str]:
    """The header's key-value fields; a key that is not UTF-8 text (a damaged header) is skipped:
    ITK hands it over undecodable and cannot be asked for its value."""
    return {k: image.GetMetaData(k) for k in image.GetMetaDataKeys() if k.isprintable() and not any("\udc80" <= c <= "\udcff" for c in k)}


def _array(image) -> np.ndarray:
    """Voxel array indexed [i, j, k] (ITK hands out [k, j, i])."""
    return np.ascontiguousarray(_sitk().GetArrayFromImage(image).transpose(2, 1, 0))


def _squeeze_4d(image, where: str):
    """A 4D volume with one time point as 3D; any other 4D volume is refused."""
    sitk = _sitk()
    if image.GetDimension() == 4:
        size = list(image.GetSize())
        if size[3] != 1:
            raise ValidationError(f"{where}: a 4D volume of size {tuple(size)}; must be 3D (one label per voxel)")
        image = sitk.Extract(image, size[:3] + [0], [0, 0, 0, 0])
    return image


def embedded_segment_names(metadata: dict[str, str]) -> dict[int, str]:
    """Label -> name from a Slicer ``.seg.nrrd`` header (``SegmentN_Name``, ``SegmentN_LabelValue``)."""
    segments: dict[int, dict[str, str]] = {}
    for key, value in metadata.items():
        m = SEGMENT_KEY.match(key)
        if m:
            segments.setdefault(int(m.group(1)), {})[m.group(2)] = value
    out = {}
    for n, seg in sorted(segments.items()):
        try:
            label = int(seg.get("LabelValue", n + 1))
        except ValueError:
            continue
        if "Name" in seg:
            out[label] = seg["Name"].strip()
    return out


def _label_file(path: Path, where: str) -> Segmentation:
    image = _squeeze_4d(_read(path, where), where)
    metadata = _metadata(image)
    if image.GetNumberOfComponentsPerPixel() != 1:
        layers = image.GetNumberOfComponentsPerPixel()
        raise ValidationError(f"{where} = {str(path)!r}: {layers} values per voxel (overlapping segment layers); export a label map with one label per voxel")
    grid = grid_from_itk(image, native_frame(path, metadata), f"{where} = {str(path)!r}")
    labels = integer_labels(_array(image), f"{where} = {str(path)!r}")
    return Segmentation(labels, grid, MappingProxyType(embedded_segment_names(metadata)), str(path))


def _mask_name(path: Path) -> str:
    name = path.name
    for suffix in MASK_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _mask_folder(folder: Path, where: str) -> Segmentation:
    """A TotalSegmentator output folder (one binary mask per structure, named after it) as one label map."""
    masks = sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(MASK_SUFFIXES))
    if not masks:
        raise ValidationError(f"{where} = {str(folder)!r}: a folder with no mask files (.nii, .nii.gz, .nrrd): give a label map or a TotalSegmentator output folder")
    labels = None
    grid = None
    names = {}
    for value, mask_path in enumerate(masks, start=1):
        part = _label_file(mask_path, where)
        if grid is None:
            grid, labels = part.grid, np.zeros(part.labels.shape, dtype=np.uint16 if len(masks) > 255 else np.uint8)
        elif part.labels.shape != grid.shape or not np.allclose(part.grid.affine, grid.affine, atol=IMAGE_GRID_TOLERANCE_MM):
            raise ValidationError(
                f"{where} = {str(folder)!r}: mask {mask_path.name!r} is on another grid than {masks[0].name!r} (shape {part.labels.shape} vs {grid.shape}); the masks of one folder must share their grid"
            )
        labels[part.labels > 0] = value  # a later mask wins where two overlap
        names[value] = _mask_name(mask_path)
    return Segmentation(labels, grid, MappingProxyType(names), str(folder))


def read_segmentation(path, where: str = "anatomy.segmentation") -> Segmentation:
    """A label map (NIfTI, NRRD, ``.seg.nrrd``, any format ITK reads) or a folder of masks.

    The labels are integers >= 0 (0 = unlabelled); names embedded in the file (``.seg.nrrd``
    segments) or given by the folder's file names come with it; other names come from a table
    (:mod:`neurolysis.anatomy.imaging.names`).
    """
    p = existing(where, path)
    segmentation = _mask_folder(p, where) if p.is_dir() else _label_file(p, where)
    if not np.any(segmentation.labels):
        raise ValidationError(f"{where} = {str(p)!r}: empty segmentation (every voxel is 0)")
    return segmentation


def _dicom_series(folder: Path, where: str):
    sitk = _sitk()
    series = _quiet(lambda: sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)))
    if not series:
        raise ValidationError(f"{where} = {str(folder)!r}: a folder with no DICOM series")
    if len(series) > 1:
        raise ValidationError(f"{where} = {str(folder)!r}: {len(series)} DICOM series mixed in one folder ({', '.join(s[-12:] for s in series[:3])}...); give a folder holding one series")
    files = _quiet(lambda: sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series[0]))
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    reader.MetaDataDictionaryArrayUpdateOn()
    try:
        image = _quiet(reader.Execute)
    except RuntimeError:
        raise ValidationError(f"{where} = {str(folder)!r}: the DICOM series cannot be read (missing or inconsistent slices)") from None
    modality = reader.GetMetaData(0, DICOM_MODALITY_TAG).strip() if reader.HasMetaDataKey(0, DICOM_MODALITY_TAG) else None
    return image, modality


def read_image(path, where: str = "anatomy.image") -> Image:
    """A CT or MR image: NIfTI, NRRD, or a folder holding one DICOM series (values as float32)."""
    p = existing(where, path)
    if p.is_dir():
        image, modality = _dicom_series(p, where)
    else:
        image, modality = _squeeze_4d(_read(p, where), where), None
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise ValidationError(f"{where} = {str(p)!r}: {image.GetNumberOfComponentsPerPixel()} values per voxel (colour or vector image); must be a scalar CT or MR")
    metadata = _metadata(image)
    grid = grid_from_itk(image, "LPS" if p.is_dir() else native_frame(p, metadata), f"{where} = {str(p)!r}")
    values = _array(image).astype(np.float32, copy=False)
    if not np.all(np.isfinite(values)):
        raise ValidationError(f"{where} = {str(p)!r}: holds NaN or infinite values")
    return Image(values, grid, modality or _modality_guess(metadata), str(p))


def _modality_guess(metadata: dict[str, str]) -> str | None:
    """The modality where a NIfTI or NRRD header says it (DICOM's tag, or a description naming CT or MR)."""
    text = " ".join(metadata.get(k, "") for k in ("descrip", "modality", "Modality", DICOM_MODALITY_TAG)).upper()
    for modality in ("CT", "MR"):
        if re.search(rf"\b{modality}\b", text):
            return modality
    return None


def resample_image(image: Image, grid: Grid, where: str = "anatomy.image") -> Image:
    """``image`` on ``grid`` (linear interpolation, each placed by its own affine); refuses an image
    that does not overlap the grid. Returns ``image`` itself when the grids already agree."""
    source = image.grid.in_frame(grid.frame)
    if source.shape == grid.shape and np.allclose(source.affine, grid.affine, atol=IMAGE_GRID_TOLERANCE_MM):
        return image
    lo, hi = grid.bounds_mm()
    slo, shi = source.bounds_mm()
    if np.any(shi <= lo) or np.any(slo >= hi):
        raise ValidationError(
            f"{where} = {image.source!r}: does not overlap the segmentation (image {np.round(slo).tolist()} to {np.round(shi).tolist()} mm, segmentation {np.round(lo).tolist()} to {np.round(hi).tolist()} mm, {grid.frame})"
        )
    from scipy.ndimage import map_coordinates

    out = np.empty(grid.shape, dtype=np.float32)
    fill = float(image.values.min())
    ii, jj = np.meshgrid(np.arange(grid.shape[0]), np.arange(grid.shape[1]), indexing="ij")
    for k in range(grid.shape[2]):  # slice by slice: bounded memory on large grids
        ijk = np.column_stack([ii.ravel(), jj.ravel(), np.full(ii.size, k)])
        index = source.to_index(grid.to_mm(ijk))
        out[:, :, k] = map_coordinates(image.values, index.T, order=1, mode="constant", cval=fill).reshape(ii.shape)
    return Image(out, grid, image.modality, image.source)


__all__ = ["embedded_segment_names", "existing", "read_image", "read_segmentation", "resample_image"]
