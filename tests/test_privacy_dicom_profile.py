"""PS3.15 Table E.1-1, Basic Profile: every row of the table gets its action, on invented values."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from pydicom.datadict import dictionary_has_tag, dictionary_VR, keyword_for_tag
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage

from medcurate.privacy.config import DeidConfig
from medcurate.privacy.dicom import DicomDeidentifier, header_phi_values
from medcurate.privacy.dicom_profile import PROFILE_SOURCE, ROWS, Row, resolve, standard_action
from medcurate.privacy.text import TextDeidentifier

NAME = "FERNWOOD^ODALYS^Q"
UID = "1.2.826.0.1.3680043.8.498.31415926"
# Invented values, one per value representation; text long enough to be searched for.
VALUES = {
    "PN": NAME,
    "LO": "Odalys Fernwood, Bramblecote",
    "SH": "BRAMBLE-7731",
    "LT": "Seen by Odalys Fernwood at Bramblecote on 03/14/2011, call 617-555-0199",
    "ST": "Seen by Odalys Fernwood at Bramblecote on 03/14/2011, call 617-555-0199",
    "UT": "Seen by Odalys Fernwood at Bramblecote on 03/14/2011, call 617-555-0199",
    "UC": "Seen by Odalys Fernwood at Bramblecote on 03/14/2011, call 617-555-0199",
    "AE": "BRAMBLE_CT2",
    "AS": "047Y",
    "CS": "FERNWOOD",
    "DA": "20110314",
    "TM": "101530",
    "DT": "20110314101530",
    "DS": "73.5",
    "IS": "4412",
    "UI": UID,
    "UR": "http://bramblecote.example/odalys",
    "OB": b"ODALYS\x00\x01",
    "OW": b"ODALYS\x00\x01",
    "UN": b"ODALYS\x00\x01",
    "US": 4412,
}
# Ambiguous dictionary VRs, and the one written here.
CHOSEN_VR = {"OB or OW": "OW", "US or SS": "US", "US or SS or OW": "US"}


def _tag(row: Row) -> int:
    """A concrete tag of the row: the 50xx/60xx rows are tried in group 5002/6002."""
    if row.mask == 0xFFFFFFFF:
        return row.value
    element = row.value & 0xFFFF if row.mask & 0xFFFF else 0x3000  # (50xx,3000) Curve Data
    return (row.value & 0xFF000000) | 0x00020000 | element


def _vr(tag: int) -> str:
    # Rows newer than pydicom's dictionary are written as LO with an explicit VR, as a file would.
    vr = dictionary_VR(tag) if dictionary_has_tag(tag) or tag >> 16 in (0x5002, 0x6002) else "LO"
    return CHOSEN_VR.get(vr, vr)


def _item() -> Dataset:
    """A sequence item with a person name and a data UID, as referencing sequences hold them."""
    item = Dataset()
    item.ReferencedSOPClassUID = SecondaryCaptureImageStorage
    item.ReferencedSOPInstanceUID = UID + ".7"
    item.PerformingPhysicianName = NAME
    return item


def _dataset(tag: int, vr: str, value: object | None = None) -> Dataset:
    """A small file with the row's attribute set; group 0002 goes to the file meta."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = UID + ".1"
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = UID + ".1"
    ds.Modality = "OT"
    if value is None:
        value = Sequence([_item()]) if vr == "SQ" else VALUES[vr]
    (ds.file_meta if tag >> 16 == 0x0002 else ds).add_new(tag, vr, value)
    return ds


def _round_trip(ds: Dataset) -> Dataset:
    """Written and read back: every action must leave a file pydicom can write (a command set
    element, group 0000, never sits in a file: it is checked in memory)."""
    if any(element.tag.group == 0 for element in ds):
        return ds
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    return pydicom.dcmread(buffer)


def _element(ds: Dataset, tag: int):
    return (ds.file_meta if tag >> 16 == 0x0002 else ds).get(tag)


def _rows(*actions: str) -> list:
    rows = [row for row in ROWS if resolve(row.action) in actions]
    return [pytest.param(row, id=f"{row.name}:{row.action}") for row in rows]


@pytest.fixture(scope="module")
def deidentifier() -> DicomDeidentifier:
    return DicomDeidentifier(DeidConfig(ocr=False))


def _run(deidentifier: DicomDeidentifier, row: Row, written: bool = True) -> tuple[int, Dataset, Dataset]:
    tag = _tag(row)
    source = _dataset(tag, _vr(tag))
    out = deidentifier.deidentify(source).dataset
    return tag, source, _round_trip(out) if written else out


def test_the_table_is_the_standards() -> None:
    """Every row of Table E.1-1 (about 650 in the 2026 editions), with the actions it uses."""
    assert len(ROWS) >= 600
    assert len({(row.value, row.mask) for row in ROWS}) == len(ROWS)
    assert {row.action for row in ROWS} == {"D", "Z", "X", "U", "Z/D", "X/Z", "X/D", "X/Z/D", "X/Z/U*"}
    assert {row.name for row in ROWS if row.mask != 0xFFFFFFFF} == {
        "(50xx,xxxx)",
        "(60xx,3000)",
        "(60xx,4000)",
    }
    for keyword in (
        "ProtocolName",
        "RequestedProcedureDescription",
        "ScheduledProcedureStepDescription",
        "ClinicalTrialTimePointID",
        "PatientName",
        "StudyInstanceUID",
        "ReferencedImageSequence",
    ):
        assert keyword in {row.name for row in ROWS}, keyword
    assert PROFILE_SOURCE.startswith("PS3.15 E.1-1 ") and "dicom-anonymizer" in PROFILE_SOURCE


@pytest.mark.parametrize("row", _rows("X"))
def test_x_rows_are_removed(deidentifier: DicomDeidentifier, row: Row) -> None:
    """X, and X/Z, X/D, X/Z/D at their most protective: the attribute is gone."""
    tag, _, out = _run(deidentifier, row)
    assert _element(out, tag) is None


@pytest.mark.parametrize("row", _rows("Z"))
def test_z_rows_are_emptied(deidentifier: DicomDeidentifier, row: Row) -> None:
    """Z, and Z/D at its most protective: present with zero length."""
    tag, _, out = _run(deidentifier, row)
    element = _element(out, tag)
    assert element is not None and element.is_empty


@pytest.mark.parametrize("row", _rows("D"))
def test_d_rows_get_a_dummy_of_their_vr(deidentifier: DicomDeidentifier, row: Row) -> None:
    """D: present, not empty, valid for the VR, and nothing of the original."""
    tag, source, out = _run(deidentifier, row)
    element = _element(out, tag)
    assert element is not None and not element.is_empty
    assert element.value != _element(source, tag).value
    if element.VR == "SQ":
        assert len(element.value) == 1 and len(element.value[0]) == 0
    elif element.VR == "UI":
        assert str(element.value).startswith("2.25.")
    else:
        assert "ODALYS" not in str(element.value).upper() and "FERNWOOD" not in str(element.value).upper()


@pytest.mark.parametrize("row", _rows("U"))
def test_u_rows_get_consistent_new_uids(deidentifier: DicomDeidentifier, row: Row) -> None:
    """U: a new UID under 2.25, the same for the same input UID in another file."""
    tag, _, out = _run(deidentifier, row)
    _, _, again = _run(deidentifier, row)
    value = _element(out, tag).value
    assert value.startswith("2.25.") and UID not in value
    assert _element(again, tag).value == value


@pytest.mark.parametrize("row", _rows("U*"))
def test_x_z_u_sequences_keep_references_with_new_uids(deidentifier: DicomDeidentifier, row: Row) -> None:
    """X/Z/U*: the sequence stays so that the reference resolves; its UIDs are remapped, the
    rest of its items gets the items' own rows (a person name goes)."""
    tag, _, out = _run(deidentifier, row)
    item = _element(out, tag).value[0]
    assert item.ReferencedSOPClassUID == SecondaryCaptureImageStorage
    assert item.ReferencedSOPInstanceUID.startswith("2.25.")
    assert "PerformingPhysicianName" not in item


def _override_rows(vrs: frozenset[str] | None = None) -> list:
    rows = [
        row
        for row in ROWS
        if row.mask == 0xFFFFFFFF and keyword_for_tag(row.value) and (vrs is None or _vr(row.value) in vrs)
    ]
    return [pytest.param(row, id=row.name) for row in rows]


@pytest.mark.parametrize("row", _override_rows())
def test_k_keeps_any_row_a_site_retains(row: Row) -> None:
    """K (the standard's Retain options, set per site): the value is kept as it was."""
    deidentifier = DicomDeidentifier(DeidConfig(ocr=False, dicom_actions={row.name: "K"}))
    # In memory: on writing, pydicom sets the file meta's instance UID from the (new) SOP one.
    tag, source, out = _run(deidentifier, row, written=False)
    kept, original = _element(out, tag), _element(source, tag)
    if original.VR == "SQ":
        assert len(kept.value) == 1  # kept, and its items still get their own rows
        assert "PerformingPhysicianName" not in kept.value[0]
    else:
        assert kept.value == original.value
    assert len(out.DeidentificationMethod) == 2  # the profile and "1 attribute actions set by the site"


@pytest.fixture(scope="module")
def text() -> TextDeidentifier:
    return TextDeidentifier(DeidConfig())


@pytest.mark.parametrize("row", _override_rows(frozenset({"LO", "LT", "ST", "UT", "UC"})))
def test_c_cleans_free_text_of_any_row(text: TextDeidentifier, row: Row) -> None:
    """C (Clean Descriptors and the like): free text runs through the text de-identifier."""
    config = DeidConfig(ocr=False, dicom_actions={row.name: "C"})
    tag, _, out = _run(DicomDeidentifier(config, text), row)
    value = str(_element(out, tag).value)
    assert value and "03/14/2011" not in value and "617-555-0199" not in value


def test_c_empties_what_cannot_be_cleaned_as_text() -> None:
    """C on a date, or without a text de-identifier: zero length, never the original."""
    config = DeidConfig(ocr=False, dicom_actions={"StudyDate": "C", "StudyDescription": "C"})
    source = _dataset(0x00081030, "LO")  # StudyDescription
    source.StudyDate = VALUES["DA"]
    out = _round_trip(DicomDeidentifier(config).deidentify(source).dataset)
    assert out.StudyDate == "" and out.StudyDescription == ""


def test_unknown_override_is_refused() -> None:
    with pytest.raises(ValueError, match="NotAKeyword"):
        DicomDeidentifier(DeidConfig(dicom_actions={"NotAKeyword": "K"}))


def test_nested_sequences_private_tags_and_overlays(deidentifier: DicomDeidentifier) -> None:
    """Sequences are walked at any depth; private tags, curves and whole overlay groups go."""
    ds = _dataset(0x00080090, "PN")  # ReferringPhysicianName
    inner = Dataset()
    inner.PatientName = NAME
    inner.StudyInstanceUID = UID + ".9"
    inner.ProtocolName = VALUES["LO"]
    inner.CodeValue = "T-D0050"  # not in the table: kept
    inner.private_block(0x0011, "ODALYS LAB", create=True).add_new(0x01, "LO", VALUES["LO"])
    outer = Dataset()
    outer.AnatomicRegionSequence = Sequence([inner])  # unlisted sequences are walked too
    ds.ReferencedSeriesSequence = Sequence([outer])
    ds.StudyInstanceUID = UID + ".9"
    ds.private_block(0x0009, "ODALYS LAB", create=True).add_new(0x10, "LT", VALUES["LT"])
    ds.add_new(0x60020010, "US", 16)  # overlay rows
    ds.add_new(0x60020022, "LO", VALUES["LO"])  # overlay description: not in the table, goes with its group
    ds.add_new(0x60024000, "LT", VALUES["LT"])
    ds.add_new(0x50020020, "CS", "TAC")
    out = _round_trip(deidentifier.deidentify(ds).dataset)
    nested = out.ReferencedSeriesSequence[0].AnatomicRegionSequence[0]
    assert nested.PatientName == "" and "ProtocolName" not in nested and nested.CodeValue == "T-D0050"
    assert nested.StudyInstanceUID == out.StudyInstanceUID != UID + ".9"
    assert not any(element.tag.is_private for element in out.iterall())
    assert not any(element.tag.group in (0x5002, 0x6002) for element in out)
    assert out.ReferringPhysicianName == ""
    assert out.PatientIdentityRemoved == "YES" and out.DeidentificationMethod == PROFILE_SOURCE
    assert standard_action(0x50020020) == "X" and standard_action(0x60020010) is None


def test_four_held_out_survivors_are_covered(deidentifier: DicomDeidentifier, tmp_path: Path) -> None:
    """The attributes that survived on held-out files, end to end through header_phi_values."""
    ds = _dataset(0x00100010, "PN")
    ds.ProtocolName = "Bramblecote knee protocol"
    ds.RequestedProcedureDescription = "Knee for Odalys Fernwood"
    ds.ScheduledProcedureStepDescription = "Fernwood follow-up"
    ds.ClinicalTrialTimePointID = "VISIT-ODALYS-3"
    ds.PatientSex = "F"
    ds.PatientWeight = "73.5"
    (tmp_path / "in").mkdir()
    (tmp_path / "kept").mkdir()
    (tmp_path / "out").mkdir()
    ds.save_as(tmp_path / "in" / "a.dcm", enforce_file_format=True)
    ds.save_as(tmp_path / "kept" / "a.dcm", enforce_file_format=True)  # an untouched copy leaks all
    deidentifier.deidentify(ds).dataset.save_as(tmp_path / "out" / "a.dcm", enforce_file_format=True)
    survived, total = header_phi_values(tmp_path / "in", tmp_path / "kept")
    assert survived == total >= 8  # the four, the name and its parts, sex and weight at their tags
    assert header_phi_values(tmp_path / "in", tmp_path / "out") == (0, total)
    out = pydicom.dcmread(tmp_path / "out" / "a.dcm")
    assert "ProtocolName" not in out and "RequestedProcedureDescription" not in out
    assert "ScheduledProcedureStepDescription" not in out and out.ClinicalTrialTimePointID == ""
