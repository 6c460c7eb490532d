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
from PIL import Image, ImageDraw
from pydicom.dataset import FileMetaDataset
from pydicom.uid import (
    BasicTextSRStorage,
    CTImageStorage,
    ExplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
    generate_uid,
)
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

HEART_FAILURE = [
    "Heart failure means the heart does not pump blood around the body as well as it should. It is "
    "a long-term condition that usually gets slowly worse, but treatment can keep symptoms under "
    "control for many years.",
    "The main symptoms are breathlessness after activity or at rest, feeling tired most of the time, "
    "and swollen ankles and legs. Some people also feel lightheaded or notice a fast heartbeat.",
    "Tests include an echocardiogram, an ultrasound scan of the heart that shows how well it pumps, "
    "and a chest X-ray, which can show an enlarged heart or fluid on the lungs.",
    "Treatment usually combines several medicines, such as beta blockers and diuretics, with "
    "regular exercise, less salt and daily weighing to spot fluid building up early.",
]


def figure_image(size: tuple[int, int], seed: int, fmt: str) -> bytes:
    """A placeholder figure (ellipses and bars, no text), deterministic for `seed`."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", size, tuple(int(v) for v in rng.integers(200, 255, 3)))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x, y = int(rng.integers(0, size[0] - 40)), int(rng.integers(0, size[1] - 40))
        w, h = int(rng.integers(20, size[0] // 2)), int(rng.integers(20, size[1] // 2))
        colour = tuple(int(v) for v in rng.integers(0, 160, 3))
        draw.ellipse((x, y, x + w, y + h), outline=colour, width=4)
        draw.rectangle((x, size[1] - 30, x + 12, size[1] - 30 + int(rng.integers(5, 25))), fill=colour)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def write_multimodal_web() -> None:
    """A saved page with its images in `NAME_files/`, and a WARC holding a page and its image."""
    web = ROOT / "web"
    assets = web / "heart-failure_files"
    assets.mkdir(parents=True, exist_ok=True)
    (assets / "echo.png").write_bytes(figure_image((320, 240), 1, "PNG"))
    (assets / "chest.jpg").write_bytes(figure_image((300, 300), 2, "JPEG"))
    (assets / "icon.png").write_bytes(figure_image((48, 48), 3, "PNG"))  # too small: dropped
    (assets / "banner.png").write_bytes(figure_image((960, 180), 4, "PNG"))  # too wide: dropped
    p = HEART_FAILURE
    (web / "heart-failure.html").write_text(f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Heart failure</title>
<link rel="license" href="https://creativecommons.org/licenses/by/4.0/"></head>
<body>
<nav><a href="/"><img src="heart-failure_files/icon.png" alt="HealthInfo"></a> | <a href="/conditions">Conditions</a></nav>
<article><h1>Heart failure: symptoms and treatment</h1>
<img src="heart-failure_files/banner.png" alt="decorative banner">
<p>{p[0]}</p>
<p>{p[1]}</p>
<figure><img src="heart-failure_files/echo.png" alt="Ultrasound of the heart">
<figcaption>An echocardiogram shows the four chambers of the heart and how well the left ventricle pumps.</figcaption></figure>
<p>{p[2]}</p>
<img src="heart-failure_files/chest.jpg" alt="Chest X-ray of Mr. {FAKE_PHI["names"][3]} showing an enlarged heart">
<p>{p[3]}</p>
</article>
<footer>HealthInfo. This page is for information only and is not medical advice.</footer>
</body></html>
""")
    buffer = io.BytesIO()
    writer = WARCWriter(buffer, gzip=True)
    page = f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>Echocardiography</title></head>
<body><main><h1>What is an echocardiogram?</h1>
<p>{p[2]}</p>
<figure><img src="/img/echo-view.png" alt="Echocardiogram">
<figcaption>A four-chamber view of the heart taken from below the ribs.</figcaption></figure>
<p>The test is painless, takes about an hour and needs no preparation. A gel is put on the chest and
a small probe is moved over the skin while pictures of the heart appear on a screen.</p>
</main></body></html>"""
    records = [
        ("https://health.example.org/echo", "text/html; charset=utf-8", page.encode()),
        ("https://health.example.org/img/echo-view.png", "image/png", figure_image((300, 220), 5, "PNG")),
    ]
    for url, content_type, payload in records:
        headers = StatusAndHeaders("200 OK", [("Content-Type", content_type)], protocol="HTTP/1.1")
        writer.write_record(
            writer.create_warc_record(
                url, "response", payload=io.BytesIO(payload), http_headers=headers,
                warc_headers_dict={"WARC-Date": "2026-11-01T00:00:00Z"},
            )
        )
    (web / "crawl-images.warc.gz").write_bytes(buffer.getvalue())


ARTICLE = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE article PUBLIC "-//NLM//DTD JATS (Z39.96) Journal Archiving and Interchange DTD v1.2 20190208//EN" "JATS-archivearticle1.dtd">
<article xmlns:xlink="http://www.w3.org/1999/xlink" article-type="research-article">
<front><journal-meta><journal-title-group><journal-title>Journal of Example Cardiology</journal-title></journal-title-group></journal-meta>
<article-meta>
<article-id pub-id-type="pmc">PMC0000042</article-id>
<article-id pub-id-type="pmid">90000042</article-id>
<article-id pub-id-type="doi">10.5555/example.0042</article-id>
<title-group><article-title>Left ventricular size on chest radiographs and echocardiography</article-title></title-group>
<permissions><license license-type="open-access" xlink:href="https://creativecommons.org/licenses/by/4.0/">
<license-p>This article is distributed under the Creative Commons Attribution License.</license-p></license></permissions>
<abstract><p>We compared the cardiothoracic ratio on chest radiographs with left ventricular volume measured
by echocardiography in adults referred for breathlessness.</p></abstract>
</article-meta></front>
<body>
<sec><title>Introduction</title>
<p>An enlarged heart on a chest radiograph is a common reason to request an echocardiogram, yet the
two measures agree only loosely in clinical practice.</p>
<p>The echocardiographic views used for volume measurement are shown in <xref ref-type="fig" rid="f2">Figure 2</xref>,
taken from the apical window.</p></sec>
<sec><title>Results</title>
<p>The cardiothoracic ratio rose with ventricular volume (<xref ref-type="fig" rid="f1">Figure 1</xref>),
but the spread was wide at every volume (<xref ref-type="fig" rid="f2">Figure 2</xref>).</p>
<p>Ratios above one half predicted a dilated ventricle in two of three patients.</p></sec>
</body>
<floats-group>
<fig id="f1"><label>Figure 1</label><caption><p>Cardiothoracic ratio against left ventricular end-diastolic volume.</p></caption>
<graphic xlink:href="example-article.g001"/></fig>
<fig id="f2"><label>Figure 2</label><caption><p>Apical four-chamber and two-chamber views used to measure volume.</p></caption>
<graphic xlink:href="example-article.g002"/></fig>
</floats-group>
</article>
"""


def write_article() -> None:
    articles = ROOT / "articles"
    articles.mkdir(parents=True, exist_ok=True)
    (articles / "example-article.nxml").write_text(ARTICLE)
    (articles / "example-article.g001.png").write_bytes(figure_image((360, 270), 6, "PNG"))
    (articles / "example-article.g002.jpg").write_bytes(figure_image((320, 320), 7, "JPEG"))


def write_study() -> None:
    """A CT study of two slices and its Basic Text SR report (the name in the report is fake PHI)."""
    study = ROOT / "images" / "ct_study"
    study.mkdir(parents=True, exist_ok=True)
    study_uid = generate_uid(entropy_srcs=["medcurate-sample-ct-study"])
    series_uid = generate_uid(entropy_srcs=["medcurate-sample-ct-series"])

    def base(sop_class: str, name: str) -> pydicom.Dataset:
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = sop_class
        meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=["medcurate-sample-ct", name])
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = sop_class
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID = study_uid
        ds.PatientName = FAKE_PHI["dicom"][0]
        ds.PatientID = FAKE_PHI["dicom"][1]
        ds.InstitutionName = FAKE_PHI["facilities"][0]
        return ds

    for number in (1, 2):
        ds = base(CTImageStorage, f"slice{number}")
        ds.SeriesInstanceUID = series_uid
        ds.Modality = "CT"
        ds.BodyPartExamined = "CHEST"
        ds.SeriesNumber, ds.InstanceNumber = 1, number
        y, x = np.mgrid[0:192, 0:192]
        body = ((x - 96) ** 2 / 80**2 + (y - 96) ** 2 / (60 + 6 * number) ** 2) < 1
        pixels = np.where(body, 1040 + 20 * np.sin(x / 7.0 + number), 24).astype(np.uint16)
        ds.Rows, ds.Columns = pixels.shape
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
        ds.PixelData = pixels.tobytes()
        ds.save_as(study / f"slice_{number}.dcm", enforce_file_format=True)

    def item(value_type: str, meaning: str, relationship: str = "CONTAINS", **values) -> pydicom.Dataset:
        entry = pydicom.Dataset()
        entry.RelationshipType = relationship
        entry.ValueType = value_type
        code = pydicom.Dataset()
        code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "121071", "DCM", meaning
        entry.ConceptNameCodeSequence = [code]
        for key, value in values.items():
            setattr(entry, key, value)
        return entry

    report = base(BasicTextSRStorage, "report")
    report.SeriesInstanceUID = generate_uid(entropy_srcs=["medcurate-sample-ct-sr-series"])
    report.Modality = "SR"
    report.SeriesNumber, report.InstanceNumber = 2, 1
    report.ValueType = "CONTAINER"
    report.ContinuityOfContent = "SEPARATE"
    title = pydicom.Dataset()
    title.CodeValue, title.CodingSchemeDesignator, title.CodeMeaning = "18748-4", "LN", "Diagnostic Imaging Report"
    report.ConceptNameCodeSequence = [title]
    report.ContentSequence = [
        item("PNAME", "Person Observer Name", "HAS OBS CONTEXT", PersonName="NATARAJAN^PRIYA"),
        item("TEXT", "Findings", TextValue=(
            f"CT chest for {FAKE_PHI['names'][0]}: the heart is mildly enlarged. Small bilateral "
            "pleural effusions. No pulmonary embolism and no focal consolidation.")),
        item("TEXT", "Impression", TextValue="Cardiomegaly with small effusions, in keeping with heart failure."),
    ]
    report.save_as(study / "report.dcm", enforce_file_format=True)


def main() -> None:
    write_web()
    write_images()
    write_clinical()
    write_multimodal_web()
    write_article()
    write_study()
    values = sorted({value for group in FAKE_PHI.values() for value in group})
    (ROOT / "fake_phi.json").write_text(json.dumps(values, indent=2) + "\n")


if __name__ == "__main__":
    main()
    print(f"sample corpus written under {ROOT}")
