"""DICOM de-identification: PS3.15 Annex E Basic Application Level Confidentiality Profile on the
header, a trained text detector on the pixels for burned-in text.

Header: every row of the profile's Table E.1-1 (`dicom_profile`, read from a maintained copy of
the standard's table) gets its action (X remove, Z empty, D dummy value, U UID remapped through a
keyed hash, so that study/series/instance links and references stay consistent across the files
of a run; K and C where a site sets the standard's options); sequences are walked; private tags,
overlays and curves are dropped; any person name, date or date-time the table does not list goes too.
PatientIdentityRemoved and DeidentificationMethod(CodeSequence) record what was done.

Pixels: the first frame is rendered to 8 bits; every text line the detector finds in it
(`text_detect`, both polarities, upscaled), grown to the glyph lines it sits on, is painted
out on every frame, PHI or not.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pydicom
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence as DicomSequence

from medcurate.privacy import dicom_profile as profile
from medcurate.privacy.config import DeidConfig
from medcurate.privacy.images import box_mask, extend_to_lines, glyph_lines
from medcurate.privacy.operators import pseudonym_uid
from medcurate.privacy.text_detect import DICOM_END_PAD, detect_text

if TYPE_CHECKING:
    from PIL import Image

    from medcurate.privacy.text import TextDeidentifier

# pydicom warnings and log lines quote header values.
logging.getLogger("pydicom").setLevel(logging.CRITICAL)

# Overlays (60xx) and curves (50xx) can carry text and drawings: the table removes curves and the
# overlay data and comments; the rest of an overlay group (labels, descriptions) goes with them.
_REPEATING_GROUPS = ((0x5000, 0x50FF), (0x6000, 0x60FF))
# Value representations that can hold identifying text (CS holds enumerations such as "YES").
_TEXT_VRS = frozenset({"PN", "LO", "SH", "LT", "ST", "UT", "AE", "DA", "DT", "TM", "AS", "UC", "UI", "UR"})
# Free text that C (clean) runs through the text de-identifier, with the VR's maximum length.
_CLEANABLE = {"SH": 16, "LO": 64, "ST": 1024, "LT": 10240, "UT": None, "UC": None}
_SOP_CLASS_UID = 0x00080016


@dataclass
class DicomResult:
    dataset: Dataset
    boxes: list[tuple[int, int, int, int]] = field(default_factory=list)
    ocr: str = "not_run"


class DicomDeidentifier:
    """Header profile plus burned-in text; UIDs map the same way for every file it sees."""

    def __init__(self, config: DeidConfig | None = None, text: TextDeidentifier | None = None) -> None:
        self.config = config or DeidConfig()
        self.text = text
        self.overrides = profile.overrides(self.config.dicom_actions)

    def deidentify(self, dataset: Dataset) -> DicomResult:
        """A de-identified copy of `dataset` (which is left as it was)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom's warnings can quote header values
            return self._deidentify(dataset)

    def _deidentify(self, dataset: Dataset) -> DicomResult:
        out = _copy(dataset)
        self.scrub(out)
        if "PixelData" not in out:
            return DicomResult(out, ocr="no_pixels")
        if not self.config.ocr:
            return DicomResult(out)
        try:
            frames = _frames(out)
            boxes = burned_in_boxes(_render(frames[0]))
        except Exception as error:  # undecodable pixels or the detector failing: reported, not hidden
            return DicomResult(out, ocr=f"failed:{type(error).__name__}")
        if boxes:
            _paint(out, frames, boxes)
        out.BurnedInAnnotation = "NO"
        _add_method_code(out, "113101", "Clean Pixel Data Option")
        return DicomResult(out, boxes, "checked")

    def scrub(self, dataset: Dataset) -> None:
        """Annex E Basic Profile (Table E.1-1, every row) in place, file meta included."""
        dataset.remove_private_tags()
        self._walk(dataset)
        if hasattr(dataset, "file_meta"):
            self._walk(dataset.file_meta)  # the instance UID again, the sending AE title
        dataset.PatientIdentityRemoved = "YES"
        method = [profile.PROFILE_SOURCE]
        if self.overrides:
            method.append(f"{len(self.overrides)} attribute actions set by the site")
        dataset.DeidentificationMethod = method if len(method) > 1 else method[0]
        _add_method_code(dataset, "113100", "Basic Application Confidentiality Profile")

    def action(self, element: DataElement) -> str | None:
        """What happens to `element`: a site override, else the table's row (compound actions at
        their most protective), else X for private tags, overlays, curves and unlisted names and
        dates, U for unlisted instance UIDs; None keeps it."""
        tag = element.tag
        if tag in self.overrides:
            return self.overrides[tag]
        action = profile.standard_action(tag)
        if action is not None:
            return profile.resolve(action)
        if (
            tag.is_private
            or any(low <= tag.group <= high for low, high in _REPEATING_GROUPS)
            or element.VR in ("PN", "DA", "DT")
        ):
            return "X"
        if element.VR == "UI" and tag != _SOP_CLASS_UID and _is_instance_uid(element):
            return "U"
        return None

    def _walk(self, dataset: Dataset) -> None:
        for element in list(dataset):
            action = self.action(element)
            if action in ("U", "U*") and element.VR not in ("UI", "SQ"):
                action = "X"  # a UID read without its VR cannot be remapped: it goes
            if action == "X":
                del dataset[element.tag]
            elif element.VR == "SQ" and action not in ("Z", "D"):
                for item in element.value:  # K, C, U* and unlisted: the items have their own rows
                    self._walk(item)
            elif action == "Z":
                element.value = element.empty_value
            elif action == "D" and element.VR == "UI":
                element.value = _remap(self.config, element.value or "0")
            elif action == "D":
                element.value = profile.dummy(element.VR)
            elif action in ("U", "U*"):
                element.value = _remap(self.config, element.value)
            elif action == "C":
                self._clean(element)

    def _clean(self, element: DataElement) -> None:
        """C: free text through the text de-identifier; anything else, or no analyzer, emptied."""
        if self.text is None or element.VR not in _CLEANABLE or element.value in (None, ""):
            element.value = element.empty_value
            return
        values = element.value if isinstance(element.value, (list, MultiValue)) else [element.value]
        limit = _CLEANABLE[element.VR]
        cleaned = [result.text[:limit] for result in self.text.deidentify_batch([str(v) for v in values])]
        element.value = cleaned if len(cleaned) > 1 else cleaned[0]


def _is_instance_uid(element: Any) -> bool:
    """UIDs that name data (not SOP classes or transfer syntaxes) are remapped wherever they sit."""
    return element.keyword.endswith("InstanceUID") or element.keyword.endswith("ReferenceUID")


def _remap(config: DeidConfig, value: Any) -> Any:
    if isinstance(value, (list, MultiValue)):
        return [pseudonym_uid(config, str(v)) for v in value]
    return pseudonym_uid(config, str(value)) if value else value


def _add_method_code(dataset: Dataset, code: str, meaning: str) -> None:
    item = Dataset()
    item.CodeValue = code
    item.CodingSchemeDesignator = "DCM"
    item.CodeMeaning = meaning
    sequence = dataset.get("DeidentificationMethodCodeSequence") or DicomSequence()
    if all(existing.get("CodeValue") != code for existing in sequence):
        sequence.append(item)
    dataset.DeidentificationMethodCodeSequence = sequence


def _copy(dataset: Dataset) -> Dataset:
    return copy.deepcopy(dataset)


def _listed(element: DataElement) -> bool:
    """A Basic Profile attribute that is not kept (K), a private one, or a person name."""
    tag = element.tag
    return profile.standard_action(tag) not in (None, "K") or tag.is_private or element.VR == "PN"


def _elements(dataset: Dataset) -> list[DataElement]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's warnings can quote header values
        return list(dataset.iterall())


def header_values(dataset: Dataset) -> set[str]:
    """Every value of a Basic Profile (not K) or private text attribute, names split in their parts."""
    values: set[str] = set()
    for element in _elements(dataset):
        if not _listed(element) or element.VR not in _TEXT_VRS or element.value in (None, ""):
            continue
        items = element.value if isinstance(element.value, (list, MultiValue)) else [element.value]
        for item in items:
            text = str(item).strip()
            parts = [text, *re.split(r"[\^=\s]+", text)] if element.VR == "PN" else [text]
            values.update(p.strip() for p in parts if len(p.strip()) >= 3)
    if hasattr(dataset, "file_meta"):
        values.add(str(dataset.file_meta.get("MediaStorageSOPInstanceUID", "")))
    values.discard("")
    return values


def burned_in_boxes(rendered: Image.Image) -> list[tuple[int, int, int, int]]:
    """Every text line the detector finds in a rendered frame, grown to the glyph lines it sits on,
    PHI-classified or not: burned-in annotation in a DICOM carries PHI by default (PS3.15 E,
    Burned In Annotation), and a banner's name, sex or ID can read as harmless on its own, so
    nothing is read or classified here."""
    found = detect_text(rendered, end_pad=DICOM_END_PAD)
    return extend_to_lines(found, glyph_lines(np.asarray(rendered.convert("L")))) if found else []


def _frames(dataset: Dataset) -> np.ndarray:
    """All frames as (frames, rows, columns[, samples]), in RGB where the source was YBR."""
    from pydicom.pixels import convert_color_space

    array = dataset.pixel_array
    frames = int(dataset.get("NumberOfFrames") or 1)
    if frames == 1:
        array = array[np.newaxis]
    if str(dataset.get("PhotometricInterpretation", "")).startswith("YBR"):
        array = convert_color_space(array, str(dataset.PhotometricInterpretation), "RGB")
    return array


def _render(frame: np.ndarray) -> Image.Image:
    """8-bit rendering for OCR: min-max stretch, so that dim overlays on 16-bit data stay legible."""
    from PIL import Image

    values = frame.astype(np.float32)
    low, high = float(values.min()), float(values.max())
    scaled = ((values - low) * (255.0 / (high - low or 1.0))).astype(np.uint8)
    return Image.fromarray(scaled, "RGB" if scaled.ndim == 3 else "L")


def _paint(dataset: Dataset, frames: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> None:
    """Boxes filled with the darkest value on every frame; the result is stored uncompressed."""
    painted = frames.copy()
    mask = np.array(box_mask((frames.shape[2], frames.shape[1]), boxes)) > 0
    painted[:, mask] = frames.min()
    photometric = "RGB" if painted.ndim == 4 else str(dataset.PhotometricInterpretation)
    data = painted if int(dataset.get("NumberOfFrames") or 1) > 1 else painted[0]
    bits = int(dataset.get("BitsStored") or data.dtype.itemsize * 8)
    dataset.set_pixel_data(data, photometric, bits, generate_instance_uid=False)


def deidentify_tree(
    source: Path, target: Path, deidentifier: DicomDeidentifier | None = None
) -> tuple[int, int]:
    """Every DICOM file under `source` (or `source` itself) to the same relative path under `target`,
    plus `target/redactions.jsonl` ({file, boxes, ocr}); returns (written, unreadable)."""
    if deidentifier is None:
        from medcurate.privacy.text import TextDeidentifier

        config = DeidConfig()
        deidentifier = DicomDeidentifier(config, TextDeidentifier(config))
    target.mkdir(parents=True, exist_ok=True)
    written = failed = 0
    with (target / "redactions.jsonl").open("w", encoding="utf-8") as log:
        root = source.parent if source.is_file() else source
        files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
        for path in files:
            relative = path.relative_to(root)
            if relative == Path("redactions.jsonl"):
                continue
            dataset = _read(path)
            if dataset is None:
                failed += path.suffix.lower() in (".dcm", ".dicom")
                continue
            try:
                result = deidentifier.deidentify(dataset)
            except Exception:  # a malformed header: counted, never written half-scrubbed
                failed += 1
                continue
            out = target / relative
            out.parent.mkdir(parents=True, exist_ok=True)
            result.dataset.save_as(out, enforce_file_format=True)
            log.write(
                json.dumps({"file": relative.as_posix(), "boxes": result.boxes, "ocr": result.ocr}) + "\n"
            )
            written += 1
    return written, failed


def _read(path: Path) -> Dataset | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pydicom.dcmread(path)
    except (InvalidDicomError, OSError, ValueError, EOFError):
        return None


def _coded_values(dataset: Dataset) -> set[tuple[int, str]]:
    """(tag, value) of the Basic Profile (not K) attributes whose values are codes, numbers or
    bytes: too short or common to search as text, so checked where they stood."""
    return {
        (int(element.tag), str(element.value))
        for element in _elements(dataset)
        if _listed(element)
        and element.VR not in _TEXT_VRS
        and element.VR != "SQ"
        and element.value not in (None, "", b"")
        and str(element.value) != str(profile.dummy(element.VR))
    }


def _header_bytes(path: Path, dataset: Dataset | None) -> bytes:
    """The written file less its pixel data: burned-in text is measured by OCR, and pixel bytes
    spell three-letter name parts by chance."""
    if dataset is None or "PixelData" not in dataset:
        return path.read_bytes()
    del dataset.PixelData
    buffer = io.BytesIO()
    try:
        dataset.save_as(buffer, enforce_file_format=True)
    except Exception:  # not writable again: the whole file is searched
        return path.read_bytes()
    return buffer.getvalue()


def header_phi_values(source: Path, target: Path) -> tuple[int, int]:
    """(surviving, total) over every Basic Profile attribute of the originals that is not K: text
    values searched in the output's header bytes as whole tokens ("MARY" inside "PRIMARY" is no leak), as
    written and upper-cased; codes, numbers and bytes looked up at the same tag in the output."""
    survived = total = 0
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        dataset = _read(path)
        out = target / path.relative_to(source)
        if dataset is None or not out.exists():
            continue
        coded = _coded_values(dataset)
        output = _read(out)
        total += len(coded)
        survived += len(coded & {(int(e.tag), str(e.value)) for e in _elements(output)}) if output else 0
        data = _header_bytes(out, output)
        for value in header_values(dataset):
            total += 1
            forms = {value.encode("latin-1", "replace"), value.upper().encode("latin-1", "replace")}
            survived += any(
                re.search(rb"(?<![A-Za-z0-9_])" + re.escape(form) + rb"(?![A-Za-z0-9_])", data)
                for form in forms
            )
    return survived, total
