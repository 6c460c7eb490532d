"""Canary PHI of every kind, seeded into every input kind, must not reach any artifact of a whole run.

A web page pairs a figure whose pixels show the patient's name with a caption and alt text naming
her: the name must leave the caption, the alt text, the page text and the pixels alike.

The run is the real pipeline (`medcurate.pipelines.curate.run`): ingest, signals, de-identification,
dedup, review routing, Parquet shards, manifest, catalog, dead letters and reports. Every file it
writes is searched (Parquet decoded, images checked for metadata and burned-in text), and so is
everything it logged or printed.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image, ImageDraw, ImageFont
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage

from medcurate.config import load_config
from medcurate.pipelines import curate
from medcurate.privacy.images import ocr_words

pytestmark = pytest.mark.slow

# One fake value of every Safe Harbor kind, unlikely to occur by chance anywhere else.
CANARY = {
    "name": "Wilhelmina Quarterfield",
    "relative": "Bartholomew Quarterfield",
    "clinician": "Ottoline Nkemelu",
    "date": "03/17/2021",
    "phone": "617-555-0142",
    "fax": "(413) 555-0177",
    "email": "wquarterfield@example.org",
    "ssn": "123-45-6780",
    "mrn": "MRN48213377",
    "account": "ACCT-77120934",
    "plan": "HPX-55123987",
    "license": "LIC-90817263",
    "street": "48 Juniper Hollow Road",
    "city_zip": "Saugus, MA 01906",
    "url": "https://portal.example.org/u/wquarterfield",
    "ip": "10.23.181.77",
    "vehicle": "1HGCM82633A004352",
    "facility": "Ravensworth Memorial Hospital",
}
# Pieces that must not survive on their own either.
FRAGMENTS = ["Wilhelmina", "Quarterfield", "Bartholomew", "Nkemelu", "Juniper Hollow", "01906", "48213377"]


def _note() -> str:
    c = CANARY
    return (
        f"Mrs. {c['name']} (MRN: {c['mrn']}) seen on {c['date']} at {c['facility']} for chest pain. "
        f"Lives at {c['street']}, {c['city_zip']}. SSN {c['ssn']}. Phone {c['phone']}, fax {c['fax']}, "
        f"email {c['email']}. Account #: {c['account']}, insurance ID: {c['plan']}, "
        f"license no: {c['license']}. Portal {c['url']} from {c['ip']}. Drives VIN {c['vehicle']}. "
        f"Husband {c['relative']} at bedside. Discussed with Dr. {c['clinician']}. Troponin negative, "
        "ECG without ischaemic change, discharged on aspirin with cardiology follow-up."
    )


def _bundle() -> dict:
    c = CANARY
    patient = {
        "resourceType": "Patient",
        "id": "pt-canary",
        "name": [{"family": "Quarterfield", "given": ["Wilhelmina"]}],
        "telecom": [{"system": "phone", "value": c["phone"]}, {"system": "email", "value": c["email"]}],
        "birthDate": "1961-04-17",
        "identifier": [{"value": c["mrn"]}, {"system": "http://hl7.org/fhir/sid/us-ssn", "value": c["ssn"]}],
        "address": [{"line": [c["street"]], "city": "Saugus", "state": "MA", "postalCode": "01906"}],
    }
    condition = {
        "resourceType": "Condition",
        "subject": {"reference": "Patient/pt-canary", "display": c["name"]},
        "code": {"text": "Essential hypertension"},
        "onsetDateTime": "2021-03-17",
        "note": [{"text": f"Reported by {c['relative']} ({c['phone']})."}],
    }
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": patient}, {"resource": condition}],
    }


def _photo(path: Path) -> None:
    """A photo with EXIF (GPS, owner) and the patient's name and MRN burned into the pixels."""
    image = Image.new("RGB", (900, 300), (235, 235, 235))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=40)
    draw.text((30, 40), "QUARTERFIELD WILHELMINA", fill=(0, 0, 0), font=font)
    draw.text((30, 140), CANARY["mrn"], fill=(0, 0, 0), font=font)
    exif = Image.Exif()
    exif[0x013B] = CANARY["name"]  # Artist
    exif[0x010E] = CANARY["street"]  # ImageDescription
    image.save(path, format="JPEG", exif=exif.tobytes(), quality=95)


def _captioned_page(folder: Path) -> None:
    """A saved web page whose figure shows the patient's name burned into its pixels and names
    her again in the caption and the alt text: every part of the pair must lose it."""
    (folder / "case_files").mkdir(parents=True)
    image = Image.new("RGB", (800, 400), (240, 240, 240))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=40)
    draw.ellipse((420, 120, 760, 360), outline=(60, 60, 60), width=6)
    draw.text((30, 40), "QUARTERFIELD WILHELMINA", fill=(0, 0, 0), font=font)
    draw.text((30, 140), CANARY["mrn"], fill=(0, 0, 0), font=font)
    image.save(folder / "case_files" / "scan.png")
    c = CANARY
    (folder / "case.html").write_text(
        "<html><head><title>Case report</title></head><body><article><h1>A case of chest pain</h1>"
        f"<p>A woman in her sixties presented with chest pain after exertion; {c['name']} agreed to "
        "the publication of this case and its images.</p>"
        f"<figure><img src='case_files/scan.png' alt='Scan of {c['name']}, {c['mrn']}'>"
        f"<figcaption>Chest film of {c['name']} taken on {c['date']} at {c['facility']}.</figcaption>"
        "</figure><p>Troponin was negative and the electrocardiogram showed no ischaemic change, so she "
        "was discharged on aspirin with cardiology follow-up.</p></article></body></html>"
    )


def _dicom(path: Path) -> None:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.8.498.77"
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.77"
    ds.Modality = "OT"
    ds.PatientName = "QUARTERFIELD^WILHELMINA"
    ds.PatientID = CANARY["mrn"]
    ds.InstitutionName = CANARY["facility"]
    ds.ReferringPhysicianName = "NKEMELU^OTTOLINE"
    ds.PatientAddress = CANARY["street"]
    rng = np.random.default_rng(7)
    ds.set_pixel_data(rng.integers(0, 255, (256, 256), dtype=np.uint8), "MONOCHROME2", 8)
    ds.save_as(path, enforce_file_format=True)


def _strings_of(path: Path) -> str:
    """Every string an output file holds; Parquet decoded, image bytes checked separately."""
    if path.suffix == ".parquet":
        table = pq.read_table(path)
        images = table.column("image_bytes").to_pylist() if "image_bytes" in table.column_names else []
        if "images" in table.column_names:
            images += [b for parts in table.column("images").to_pylist() for b in parts or []]
        binary = [c for c in ("image_bytes", "images") if c in table.column_names]
        rows = table.drop_columns(binary).to_pylist()
        return json.dumps(rows, default=str) + "".join(b.decode("latin-1") for b in images if b is not None)
    return path.read_bytes().decode("latin-1")


def _leaks(blob: str) -> list[str]:
    haystack = blob.lower()
    values = [*CANARY.values(), *FRAGMENTS]
    return [value for value in values if value.lower() in haystack]


def test_no_canary_reaches_any_artifact(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    inputs = tmp_path / "inputs"
    (inputs / "clinical").mkdir(parents=True)
    (inputs / "images").mkdir()
    note = _note()
    (inputs / "clinical" / "note_canary.txt").write_text(note)
    rows = [{"id": "canary-1", "text": note, "patient_name": CANARY["name"], "ssn": CANARY["ssn"]}]
    (inputs / "clinical" / "notes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (inputs / "clinical" / "bundle.json").write_text(json.dumps(_bundle()))
    _photo(inputs / "images" / "photo.jpg")
    _dicom(inputs / "images" / "scan.dcm")
    _captioned_page(inputs / "web")
    output = tmp_path / "out"
    config = load_config(
        None,
        [
            f"ingest.inputs={json.dumps([str(inputs / d) for d in ('clinical', 'images', 'web')])}",
            f"publish.output_dir={output}",
            "dataset=canary",
        ],
    )
    printed = io.StringIO()
    caplog.set_level(logging.DEBUG)
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        result = curate.run(config)
    assert result.manifest.rows >= 5, "the canary inputs must be published, not only dropped"

    files = [p for p in output.rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in files)
    for path in files:
        assert not _leaks(_strings_of(path)), f"canary PHI in {path.relative_to(output)}"
    leaking = [r.name + ":" + r.levelname for r in caplog.records if _leaks(r.getMessage())]
    assert not _leaks(printed.getvalue() + caplog.text), f"canary PHI in logs or console output: {leaking}"

    shards = [p for p in files if p.suffix == ".parquet" and "data" in p.parts]
    images = [
        Image.open(io.BytesIO(b))
        for p in shards
        for b in pq.read_table(p, columns=["image_bytes"]).column("image_bytes").to_pylist()
        if b is not None
    ]
    assert images, "the photo and the DICOM must be published as images"
    pages = [
        row
        for p in shards
        for row in pq.read_table(p, columns=["modality", "images", "image_meta"]).to_pylist()
        if row["modality"] == "multimodal"
    ]
    assert len(pages) == 1, "the page must be published with its figure"
    [figure] = [b for b in pages[0]["images"] if b is not None]
    assert next(m["caption"] for m in pages[0]["image_meta"] if m).startswith("Chest film of")
    images.append(Image.open(io.BytesIO(figure)))
    for image in images:
        assert not image.getexif() and not image.info.get("exif"), "published images carry no metadata"
        read_back = " ".join(word.text for word in ocr_words(image)).lower()
        assert "quarterfield" not in read_back and "48213377" not in read_back
