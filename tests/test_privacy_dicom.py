"""DICOM header profile and burned-in text, on generated files and on the deid_data set."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image, ImageDraw, ImageFont
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage

from medcurate.privacy import cli as deid_cli
from medcurate.privacy.config import DeidConfig
from medcurate.privacy.dicom import DicomDeidentifier, header_phi_values
from medcurate.privacy.images import ocr_words
from medcurate.privacy.text import TextDeidentifier

DEID_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "images" / "deid_data_dicom"
STUDY_UID = "1.2.826.0.1.3680043.8.498.1234567"
PHI = {
    "PatientName": "QUARTERFIELD^WILHELMINA^O",
    "PatientID": "MRN48213377",
    "PatientBirthDate": "19610417",
    "AccessionNumber": "ACC99120",
    "InstitutionName": "Ravensworth General Hospital",
    "ReferringPhysicianName": "NKEMELU^BARTHOLOMEW",
    "StationName": "RAVEN-US-04",
    "StudyDate": "20190302",
    "PatientAddress": "48 Juniper Hollow Rd, Saugus",
}


def _dataset(sop_uid: str, burned_in: str | None = None) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = STUDY_UID
    ds.SeriesInstanceUID = STUDY_UID + ".1"
    ds.Modality = "OT"
    for keyword, value in PHI.items():
        setattr(ds, keyword, value)
    referenced = Dataset()
    referenced.ReferencedSOPClassUID = SecondaryCaptureImageStorage
    referenced.ReferencedSOPInstanceUID = STUDY_UID + ".1.1"
    referenced.PerformingPhysicianName = "TILLINGHAST^HEPZIBAH"
    ds.ReferencedImageSequence = Sequence([referenced])
    block = ds.private_block(0x0099, "ACME PRIVATE", create=True)
    block.add_new(0x01, "LO", "Wilhelmina private note")
    image = Image.new("L", (640, 200), 0)
    if burned_in:
        ImageDraw.Draw(image).text((20, 20), burned_in, fill=255, font=ImageFont.load_default(size=36))
    ds.set_pixel_data(np.array(image), "MONOCHROME2", 8, generate_instance_uid=False)
    return ds


@pytest.fixture(scope="module")
def deidentifier() -> DicomDeidentifier:
    config = DeidConfig()
    return DicomDeidentifier(config, TextDeidentifier(config))


def test_header_profile_uids_and_private_tags(deidentifier: DicomDeidentifier) -> None:
    first, second = _dataset(STUDY_UID + ".1.1"), _dataset(STUDY_UID + ".1.2")
    out_first = deidentifier.deidentify(first).dataset
    out_second = deidentifier.deidentify(second).dataset
    assert first.PatientName == PHI["PatientName"], "the input must not be modified"
    for out in (out_first, out_second):
        assert out.PatientName == "" and out.PatientID == "" and out.AccessionNumber == ""
        for keyword in ("InstitutionName", "StationName", "PatientAddress"):
            assert keyword not in out
        assert not any(element.tag.is_private for element in out.iterall())
        assert out.PatientIdentityRemoved == "YES"
        assert {item.CodeValue for item in out.DeidentificationMethodCodeSequence} >= {"113100"}
        assert out.StudyInstanceUID.startswith("2.25.") and out.StudyInstanceUID != STUDY_UID
        assert out.SOPClassUID == SecondaryCaptureImageStorage
        assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
        item = out.ReferencedImageSequence[0]
        assert "PerformingPhysicianName" not in item  # sequences are walked
    # Consistent within a run: one study, two instances; the reference points at the first one.
    assert out_first.StudyInstanceUID == out_second.StudyInstanceUID
    assert out_first.SOPInstanceUID != out_second.SOPInstanceUID
    assert out_second.ReferencedImageSequence[0].ReferencedSOPInstanceUID == out_first.SOPInstanceUID


@pytest.mark.slow
def test_burned_in_name_is_boxed_out(deidentifier: DicomDeidentifier) -> None:
    source = _dataset(STUDY_UID + ".1.3", burned_in="QUARTERFIELD WILHELMINA 48213377")
    before = " ".join(w.text for w in ocr_words(Image.fromarray(source.pixel_array)))
    assert "QUARTERFIELD" in before  # the test image is legible to Tesseract
    result = deidentifier.deidentify(source)
    assert result.ocr == "checked" and result.boxes
    after = " ".join(w.text for w in ocr_words(Image.fromarray(result.dataset.pixel_array)))
    for word in ("QUARTERFIELD", "WILHELMINA", "48213377"):
        assert word not in after
    assert result.dataset.BurnedInAnnotation == "NO"


@pytest.mark.slow
def test_deid_dicom_cli_on_ultrasounds(tmp_path: Path) -> None:
    source = DEID_DATA / "ultrasounds"
    if not source.is_dir():
        pytest.skip(f"deid_data DICOMs not found at {source}")
    parser = argparse.ArgumentParser(prog="medcurate")
    deid_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["deid", "dicom", str(source), str(tmp_path / "out")])
    assert args.handler(args, []) == 0
    survived, total = header_phi_values(source, tmp_path / "out")
    assert total > 50 and survived == 0
    lines = [json.loads(line) for line in (tmp_path / "out" / "redactions.jsonl").read_text().splitlines()]
    assert sorted(line["file"] for line in lines) == ["GREYSCALE_IMAGE.dcm", "RGB_IMAGE.dcm"]
    assert all(line["ocr"] == "checked" and line["boxes"] for line in lines)
    out = pydicom.dcmread(tmp_path / "out" / "RGB_IMAGE.dcm")
    band = out.pixel_array[:60]  # the burned-in name, ID, date and institution sit along the top
    words = " ".join(w.text for w in ocr_words(Image.fromarray(band)))
    assert "CLEVELAND" not in words.upper() and "MARY" not in words.upper()
