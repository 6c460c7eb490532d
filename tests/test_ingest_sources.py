"""The ingestion core on small real files made here: what becomes a sample, what a dead letter."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest
from PIL import Image
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from medcurate.pipelines.config import IngestConfig
from medcurate.pipelines.ingest.sources import NoInputError, expand_inputs, read_source
from medcurate.schemas.events import DeadLetter
from medcurate.schemas.sample import SAMPLE_FIELDS

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CONFIG = IngestConfig()
ARTICLE = (
    "<html><head><meta charset='utf-8'><title>Managing type 2 diabetes</title></head><body>"
    "<nav>Home | News | Contact</nav><article><h1>Managing type 2 diabetes</h1>"
    + "".join(
        f"<p>Paragraph {i}: regular exercise, a balanced diet and metformin help most patients keep "
        f"their blood glucose within the target range recommended by their physician.</p>"
        for i in range(8)
    )
    + "</article><footer>Copyright 2024</footer></body></html>"
)


def read_all(path: Path | str, config: IngestConfig = CONFIG) -> tuple[list[dict], list[DeadLetter]]:
    items = list(read_source(str(path), config))
    samples = [item for item in items if isinstance(item, dict)]
    return samples, [item for item in items if isinstance(item, DeadLetter)]


def write_warc(path: Path, pages: list[tuple[str, str]], gzip_records: bool = True) -> None:
    with path.open("wb") as stream:
        writer = WARCWriter(stream, gzip=gzip_records)
        for url, html in pages:
            request = writer.create_warc_record(
                url, "request", http_headers=StatusAndHeaders("GET / HTTP/1.1", [], protocol="HTTP/1.1")
            )
            writer.write_record(request)
            headers = StatusAndHeaders(
                "200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.0"
            )
            record = writer.create_warc_record(
                url, "response", payload=io.BytesIO(html.encode()), http_headers=headers
            )
            writer.write_record(record)


def test_warc_response_becomes_web_sample_and_request_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "crawl.warc.gz"
    write_warc(path, [("https://example.org/diabetes", ARTICLE)])
    skipped: list[str] = []
    items = list(read_source(str(path), CONFIG, on_skip=skipped.append))
    assert skipped == ["warc_request"]
    [sample] = items
    assert set(sample) == set(SAMPLE_FIELDS)
    assert (sample["source_kind"], sample["modality"]) == ("web", "text")
    assert sample["source_uri"] == f"{path}#record=1"
    assert "metformin" in sample["text"] and "Copyright 2024" not in sample["text"]
    assert sample["metadata"]["url"] == "https://example.org/diabetes"
    assert sample["metadata"]["title"] == "Managing type 2 diabetes"
    assert sample["metadata"]["charset"] == "utf-8"
    assert sample["metadata"]["content_type"] == "text/html"


def test_truncated_warc_keeps_records_before_the_break(tmp_path: Path) -> None:
    whole = tmp_path / "whole.warc.gz"
    write_warc(
        whole, [(f"https://example.org/{i}", ARTICLE.replace("diabetes", f"topic {i}")) for i in range(3)]
    )
    data = whole.read_bytes()
    truncated = tmp_path / "truncated.warc.gz"
    truncated.write_bytes(data[: int(len(data) * 0.8)])
    samples, dead = read_all(truncated)
    assert 1 <= len(samples) < 3
    assert [d.reason for d in dead] == ["truncated_warc"]
    assert dead[0].stage == "ingest" and dead[0].source_uri == str(truncated)


def test_html_file_and_gzipped_html(tmp_path: Path) -> None:
    (tmp_path / "page.html").write_text(ARTICLE)
    (tmp_path / "page2.html.gz").write_bytes(gzip.compress(ARTICLE.encode()))
    for name in ("page.html", "page2.html.gz"):
        [sample], dead = read_all(tmp_path / name)
        assert not dead and sample["source_kind"] == "web" and "balanced diet" in sample["text"]


def _exif_with_gps() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0112] = 6  # Orientation: rotate 90
    exif[0x8825] = {1: "N", 2: (40.0, 26.0, 46.0), 3: "W", 4: (79.0, 58.0, 56.0)}  # GPS
    return exif


@pytest.mark.parametrize(
    ("name", "fmt", "expected"), [("photo.jpg", "JPEG", "jpeg"), ("scan.png", "PNG", "png")]
)
def test_image_is_oriented_and_stripped_of_metadata(
    tmp_path: Path, name: str, fmt: str, expected: str
) -> None:
    path = tmp_path / name
    Image.new("RGB", (64, 32), (200, 30, 30)).save(path, fmt, exif=_exif_with_gps())
    with Image.open(path) as original:
        assert original.getexif()[0x0112] == 6
    [sample], dead = read_all(path)
    assert not dead
    assert (sample["source_kind"], sample["modality"], sample["image_format"]) == ("image", "image", expected)
    assert (sample["image_width"], sample["image_height"]) == (32, 64)  # orientation applied
    assert 0 <= sample["image_phash"] < 2**64
    with Image.open(io.BytesIO(sample["image_bytes"])) as clean:
        assert not clean.getexif() and "exif" not in clean.info
        assert clean.size == (32, 64)
    assert b"PhoneMaker" not in sample["image_bytes"]


def test_truncated_jpeg_and_bomb_and_binary_txt_are_dead_letters(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.effect_noise((256, 256), 64).convert("RGB").save(buffer, "JPEG")
    (tmp_path / "cut.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    bomb = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(bomb, "PNG")  # 400 MP that compress to a few KB
    (tmp_path / "bomb.png").write_bytes(bomb.getvalue())
    (tmp_path / "notes.txt").write_bytes(bytes(range(256)) * 64)
    reasons = {
        name: [d.reason for d in read_all(tmp_path / name)[1]]
        for name in ("cut.jpg", "bomb.png", "notes.txt")
    }
    assert reasons == {
        "cut.jpg": ["corrupt_image"],
        "bomb.png": ["decompression_bomb"],
        "notes.txt": ["unsupported_type"],
    }


def test_notes_utf8_only_and_bounded(tmp_path: Path) -> None:
    (tmp_path / "ok.txt").write_text("Patient seen for follow-up of hypertension.\n")
    (tmp_path / "latin1.txt").write_bytes("Patient fiévreux, traité par paracétamol.".encode("latin-1"))
    (tmp_path / "long.txt").write_text("word " * 1000)
    config = IngestConfig(max_text_chars=1000)
    [note], _ = read_all(tmp_path / "ok.txt", config)
    assert (note["source_kind"], note["text"]) == ("clinical", "Patient seen for follow-up of hypertension.")
    assert [d.reason for d in read_all(tmp_path / "latin1.txt", config)[1]] == ["not_utf8"]
    assert [d.reason for d in read_all(tmp_path / "long.txt", config)[1]] == ["too_large"]


def test_jsonl_and_csv_notes_keep_only_allowed_metadata(tmp_path: Path) -> None:
    lines = [
        {"text": "Chest pain, troponin negative.", "note_type": "ED", "patient_name": "X"},
        "not json",
        {"note_type": "ED"},
    ]
    (tmp_path / "notes.jsonl").write_text(
        "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines)
    )
    samples, dead = read_all(tmp_path / "notes.jsonl")
    assert [s["source_uri"].rsplit("#", 1)[1] for s in samples] == ["record=0"]
    assert samples[0]["metadata"] == {"note_type": "ED"}
    assert [(d.reason, d.source_uri.rsplit("#", 1)[1]) for d in dead] == [
        ("malformed_record", "record=1"),
        ("missing_text", "record=2"),
    ]
    (tmp_path / "notes.csv").write_text('id,note_text,category\n1,"Fever, cough.",triage\n2,"",triage\n')
    samples, dead = read_all(tmp_path / "notes.csv")
    assert [(s["text"], s["metadata"]) for s in samples] == [("Fever, cough.", {"category": "triage"})]
    assert [d.reason for d in dead] == ["no_text"]


def test_expand_inputs_folders_globs_and_typos(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "b").mkdir()
    for name in ("a/one.txt", "a/b/two.html", "three.txt"):
        (tmp_path / name).write_text("x")
    found = expand_inputs([str(tmp_path / "a"), str(tmp_path / "*.txt"), str(tmp_path / "a" / "one.txt")])
    assert found == sorted({str(tmp_path / p) for p in ("a/one.txt", "a/b/two.html", "three.txt")})
    with pytest.raises(NoInputError, match="nothing-here"):
        expand_inputs([str(tmp_path / "nothing-here*.warc")])


def test_synthea_bundle_names_conditions_and_medications_but_not_the_patient() -> None:
    bundles = SHARED / "phi" / "synthea_fhir" / "bundles"
    if not bundles.is_dir():
        pytest.skip(f"shared evaluation data absent: {bundles}")
    path = sorted(bundles.glob("*.json"))[3]
    bundle = json.loads(path.read_text())
    resources = [entry["resource"] for entry in bundle["entry"]]
    [sample], dead = read_all(path)
    assert not dead and sample["source_kind"] == "clinical"
    text = sample["text"]
    for resource in resources:
        if resource["resourceType"] == "Condition":
            assert resource["code"]["text"] in text
        if resource["resourceType"] == "MedicationRequest":
            assert resource["medicationCodeableConcept"]["text"] in text
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    for value in [
        *patient["name"][0]["given"],
        patient["name"][0]["family"],
        patient["address"][0]["line"][0],
    ]:
        assert value not in text
    assert patient["birthDate"] not in text and patient["telecom"][0]["value"] not in text
    assert sample["metadata"]["sex"] == patient["gender"]


def test_pydicom_example_becomes_png_without_header() -> None:
    from pydicom.data import get_testdata_file

    path = get_testdata_file("CT_small.dcm")
    [sample], dead = read_all(path)
    assert not dead
    assert (sample["image_format"], sample["image_mode"]) == ("png", "L")
    assert (sample["image_width"], sample["image_height"]) == (128, 128)
    assert sample["metadata"]["modality"] == "CT"
    assert sample["metadata"]["transfer_syntax"] == "Explicit VR Little Endian"
    assert b"CompressedSamples" not in sample["image_bytes"]
    with Image.open(io.BytesIO(sample["image_bytes"])) as image:
        assert (
            image.format == "PNG" and len(set(image.get_flattened_data())) > 50
        )  # real pixels, windowed to 8 bits
