"""Writes the bundled sample corpus (`python sample_data/generate.py`); the files are committed.

Everything here is invented: the people, numbers and places are fake PHI planted so that tests can
prove none of it reaches an output. `fake_phi.json` lists every planted value.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

ROOT = Path(__file__).resolve().parent

FAKE_PHI = {
    "names": ["Josiah Mercer", "Eleanor Vance", "Priya Natarajan", "Marcus Oyelaran", "Hester Pemberton"],
    "dates": ["03/14/2024", "March 14, 2024", "11/02/1958", "04/02/2024"],
    "phones": ["(617) 555-0142", "617-555-0199"],
    "mrns": ["00482913", "MRN-7731942"],
    "emails": ["e.vance@example.org"],
    "addresses": ["41 Elm Street", "62704"],
    "ssns": ["219-09-9999"],
    "facilities": ["St. Brigid Memorial Hospital"],
    "dicom": ["MERCER^JOSIAH", "PID-558812"],
    "exif": ["Wound photo of Hester Pemberton"],
}

DIABETES_LEAFLET = """
Type 2 diabetes is a long-term condition in which the body does not use insulin properly, so the
level of sugar in the blood becomes too high. It is common in adults over forty, and the risk rises
with excess weight, physical inactivity and a family history of the condition. Many people have no
symptoms at first. Others notice they are thirsty, pass urine more often, feel tired or lose weight
without trying. Left untreated, high blood sugar damages blood vessels and nerves, which raises the
risk of heart disease, stroke, kidney disease, sight loss and foot ulcers. Treatment starts with a
healthy diet, regular exercise and weight loss where needed. Many people also take metformin, and
some later need other tablets or insulin injections. Regular checks of blood sugar, blood pressure,
cholesterol, eyes, kidneys and feet help to catch problems early, when they are easiest to treat.
"""

FLU_PAGE = """
Seasonal influenza vaccination is recommended every year for everyone aged six months and older,
and especially for people over sixty-five, pregnant women, and anyone with a chronic heart, lung or
kidney condition. The vaccine is updated each season to match the strains expected to circulate.
It takes about two weeks after vaccination for protection to develop. Side effects are usually
mild: a sore arm, a low fever or aches for a day or two. The vaccine cannot give you the flu.
Questions about the clinic schedule can be sent to our nurse coordinator, Eleanor Vance, at
e.vance@example.org or 617-555-0199.
"""

ASTHMA_PAGE = """
Asthma is a common lung condition that causes occasional breathing difficulties. It affects people
of all ages and often starts in childhood. Symptoms include wheezing, breathlessness, a tight chest
and coughing, and they can get temporarily worse during an asthma attack. Triggers include
allergies to pollen or pets, smoke, cold air, exercise and infections such as colds or flu. Most
people control their asthma with inhalers: a reliever inhaler to treat symptoms when they occur and
a preventer inhaler used every day to reduce inflammation in the airways. A written action plan,
agreed with a doctor or nurse, helps people to recognise when symptoms are getting worse.
"""

FRENCH_PAGE = """
La grippe saisonnière est une infection respiratoire aiguë due aux virus influenza. Elle se
transmet facilement d'une personne à l'autre par les gouttelettes de salive. La vaccination est
recommandée chaque année pour les personnes âgées de soixante-cinq ans et plus et pour les malades
chroniques. Les symptômes sont une fièvre élevée, des courbatures et une grande fatigue.
"""

NOTES = {
    "note_001.txt": """DISCHARGE SUMMARY
Patient: Josiah Mercer   MRN: 00482913   DOB: 11/02/1958
Admitted 03/14/2024 to St. Brigid Memorial Hospital with community-acquired pneumonia.
Treated with IV ceftriaxone and azithromycin, then switched to oral amoxicillin. Oxygen weaned to
room air by day three. Discharged home on 04/02/2024 in stable condition.
Follow-up with Dr. Priya Natarajan in two weeks. Call (617) 555-0142 with any concerns.
""",
    "note_002.txt": """PROGRESS NOTE
Mr. Marcus Oyelaran, 71, seen in clinic for type 2 diabetes and hypertension. HbA1c 7.9 percent,
up from 7.2. Blood pressure 148/86. Lives at 41 Elm Street, Springfield, IL 62704 with his wife.
SSN on file 219-09-9999. Plan: increase metformin to 1000 mg twice daily, start lisinopril 10 mg,
dietitian referral, repeat HbA1c in three months.
""",
    "note_003.txt": """NURSING NOTE
Pt resting comfortably overnight. Vital signs stable, afebrile. Tolerating regular diet.
Ambulated in hallway twice with walker and standby assist. Pain controlled with oral
acetaminophen. Daughter Hester Pemberton visited in the evening and was updated on the plan of care.
""",
}

JSONL_NOTES = [
    {
        "id": "ed-visit-1",
        "text": "ED triage: 45 year old woman with sudden severe headache and neck stiffness since "
        "this morning. No trauma. CT head ordered, neurology consulted. Reached her husband at "
        "617-555-0199. Seen on March 14, 2024 by the triage nurse.",
    },
    {
        "id": "ed-visit-2",
        "text": "ED triage: 8 year old boy with wheeze and cough for two days, known asthma, "
        "salbutamol at home not helping. Oxygen saturation 93 percent on air. Nebulised "
        "salbutamol and oral prednisolone given, good response.",
    },
    {
        # The same templated text as ed-visit-2: an exact duplicate once normalised.
        "id": "ed-visit-2-resent",
        "text": "ED triage: 8 year old boy with wheeze and cough for two days, known asthma, "
        "salbutamol at home not helping. Oxygen saturation 93 percent on air.  Nebulised "
        "salbutamol and oral prednisolone given, good response.",
    },
]


def html_page(title: str, body: str, site: str) -> str:
    paragraphs = "\n".join(f"<p>{p.strip()}</p>" for p in body.strip().split("\n\n"))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body>
<nav><a href="/">{site} home</a> | <a href="/conditions">Conditions</a> | <a href="/contact">Contact</a></nav>
<article><h1>{title}</h1>
{paragraphs}
</article>
<footer>© {site}. This page is for information only and is not medical advice.</footer>
</body></html>
"""


def write_web() -> None:
    web = ROOT / "web"
    web.mkdir(parents=True, exist_ok=True)
    (web / "type2-diabetes.html").write_text(html_page("Type 2 diabetes", DIABETES_LEAFLET, "HealthInfo"))
    # The same leaflet republished by another site: a near-duplicate of the page above.
    (web / "type2-diabetes-mirror.html").write_text(
        html_page("Type 2 diabetes: an overview", DIABETES_LEAFLET, "CityClinic Patient Library")
    )
    (web / "grippe.html").write_text(html_page("La grippe", FRENCH_PAGE, "SantéInfo"))

    buffer = io.BytesIO()
    writer = WARCWriter(buffer, gzip=True)
    pages = [
        ("https://health.example.org/flu-vaccine", html_page("Flu vaccination", FLU_PAGE, "HealthInfo")),
        ("https://health.example.org/asthma", html_page("Asthma", ASTHMA_PAGE, "HealthInfo")),
    ]
    for url, html in pages:
        headers = StatusAndHeaders(
            "200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1"
        )
        record = writer.create_warc_record(
            url,
            "response",
            payload=io.BytesIO(html.encode()),
            http_headers=headers,
            warc_headers_dict={"WARC-Date": "2026-11-01T00:00:00Z"},
        )
        writer.write_record(record)
    png = io.BytesIO()
    Image.new("L", (8, 8), 128).save(png, format="PNG")
    headers = StatusAndHeaders("200 OK", [("Content-Type", "image/png")], protocol="HTTP/1.1")
    writer.write_record(
        writer.create_warc_record(
            "https://health.example.org/logo.png",
            "response",
            payload=io.BytesIO(png.getvalue()),
            http_headers=headers,
            warc_headers_dict={"WARC-Date": "2026-11-01T00:00:00Z"},
        )
    )
    (web / "crawl.warc.gz").write_bytes(buffer.getvalue())
    # Deliberately broken: the same crawl cut off in the middle of its second record.
    data = buffer.getvalue()
    (web / "crawl-truncated.warc.gz").write_bytes(data[: int(len(data) * 0.6)])


def xray_like(size: int = 256) -> np.ndarray:
    """A smooth synthetic radiograph-like picture (no real patient)."""
    y, x = np.mgrid[0:size, 0:size] / size
    lungs = np.exp(-(((x - 0.3) / 0.15) ** 2 + ((y - 0.5) / 0.3) ** 2))
    lungs += np.exp(-(((x - 0.7) / 0.15) ** 2 + ((y - 0.5) / 0.3) ** 2))
    ribs = 0.15 * (np.sin(y * 40) > 0.6)
    return np.clip(200 - 120 * lungs + 40 * ribs, 0, 255).astype(np.uint8)


def write_images() -> None:
    images = ROOT / "images"
    images.mkdir(parents=True, exist_ok=True)
    Image.fromarray(xray_like()).save(images / "chest_xray.png")

    photo = Image.fromarray(np.dstack([xray_like(320)[:240, :] for _ in range(3)]), mode="RGB")
    exif = photo.getexif()
    exif[0x010E] = FAKE_PHI["exif"][0]  # ImageDescription
    exif[0x0112] = 6  # Orientation: rotate 90° on display
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (42.0, 21.0, 30.0), 3: "W", 4: (71.0, 3.0, 36.0)})
    photo.save(images / "wound_photo.jpg", format="JPEG", quality=90, exif=exif)

    jpeg = io.BytesIO()
    photo.save(jpeg, format="JPEG", quality=90)
    (images / "truncated.jpg").write_bytes(jpeg.getvalue()[: len(jpeg.getvalue()) // 3])

    # A different picture from chest_xray.png (a transposed, banded one), so it is no near-duplicate.
    pixels = (xray_like(128).T.astype(np.uint16) * 16 + np.arange(128, dtype=np.uint16)[:, None] * 8).astype(
        np.uint16
    )
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=["medcurate-sample"])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid(entropy_srcs=["medcurate-sample-study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=["medcurate-sample-series"])
    ds.PatientName = FAKE_PHI["dicom"][0]
    ds.PatientID = FAKE_PHI["dicom"][1]
    ds.PatientBirthDate = "19581102"
    ds.InstitutionName = FAKE_PHI["facilities"][0]
    ds.Modality = "CR"
    ds.BodyPartExamined = "CHEST"
    ds.StudyDescription = "CHEST PA"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = pixels.tobytes()
    ds.save_as(images / "chest_cr.dcm", enforce_file_format=True)


def write_clinical() -> None:
    notes = ROOT / "clinical" / "notes"
    notes.mkdir(parents=True, exist_ok=True)
    for name, text in NOTES.items():
        (notes / name).write_text(text)
    with (ROOT / "clinical" / "ed_triage.jsonl").open("w") as out:
        for note in JSONL_NOTES:
            out.write(json.dumps(note) + "\n")
    # Deliberately broken: a legacy export in UTF-16 (not UTF-8) with a NUL-riddled body.
    (notes / "legacy_export.txt").write_bytes(NOTES["note_003.txt"].encode("utf-16"))
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "resource": {
                    "resourceType": "Patient",
                    "id": "p1",
                    "name": [{"family": "Vance", "given": ["Eleanor"]}],
                    "telecom": [{"system": "phone", "value": "617-555-0199"}],
                    "gender": "female",
                    "birthDate": "1958-11-02",
                    "address": [{"line": ["41 Elm Street"], "city": "Springfield", "postalCode": "62704"}],
                }
            },
            {
                "resource": {
                    "resourceType": "Condition",
                    "id": "c1",
                    "subject": {"reference": "Patient/p1"},
                    "code": {"text": "Essential hypertension"},
                    "onsetDateTime": "2024-03-14",
                }
            },
            {
                "resource": {
                    "resourceType": "MedicationRequest",
                    "id": "m1",
                    "subject": {"reference": "Patient/p1"},
                    "medicationCodeableConcept": {"text": "Lisinopril 10 MG Oral Tablet"},
                    "status": "active",
                }
            },
        ],
    }
    fhir = ROOT / "clinical" / "fhir"
    fhir.mkdir(parents=True, exist_ok=True)
    (fhir / "patient_bundle.json").write_text(json.dumps(bundle, indent=2))
    (fhir / "broken_bundle.json").write_text(json.dumps(bundle)[:200])


def main() -> None:
    write_web()
    write_images()
    write_clinical()
    values = sorted({value for group in FAKE_PHI.values() for value in group})
    (ROOT / "fake_phi.json").write_text(json.dumps(values, indent=2) + "\n")


if __name__ == "__main__":
    main()
    print(f"sample corpus written under {ROOT}")
