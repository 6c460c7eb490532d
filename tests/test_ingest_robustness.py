"""Ingestion against hostile inputs and every real file of the shared evaluation data: nothing crashes,
every failure is a reason-coded dead letter, and memory stays bounded."""

from __future__ import annotations

import csv
import gzip
import io
import json
import tracemalloc
from pathlib import Path

import pytest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from medcurate.pipelines.config import IngestConfig
from medcurate.pipelines.ingest.sources import expand_inputs, read_source
from medcurate.schemas.events import DeadLetter

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SMALL = IngestConfig(max_record_bytes=1 << 20, max_text_chars=100_000)
FIFTY_MB = 50 * 1024 * 1024


def read_all(path: Path | str, config: IngestConfig = SMALL) -> tuple[list[dict], list[DeadLetter]]:
    items = list(read_source(str(path), config))
    return [i for i in items if isinstance(i, dict)], [i for i in items if isinstance(i, DeadLetter)]


def shared(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared evaluation data absent: {path}")
    return path


def _peak_bytes(path: Path) -> tuple[int, tuple[list[dict], list[DeadLetter]]]:
    tracemalloc.start()
    try:
        result = read_all(path)
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["note.txt", "notes.jsonl", "notes.csv", "page.html.gz"])
def test_fifty_megabyte_single_line_is_rejected_in_bounded_memory(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    line = b"x" * FIFTY_MB
    if name == "notes.jsonl":
        line = b'{"text": "' + line + b'"}\n{"text": "a short note"}\n'
    elif name == "notes.csv":
        line = b"id,text\n1," + line + b"\n2,a short note\n"
    elif name == "page.html.gz":
        line = gzip.compress(b"<html><body><p>" + line + b"</p></body></html>", compresslevel=1)
    path.write_bytes(line)
    peak, (samples, dead) = _peak_bytes(path)
    assert [d.reason for d in dead] == ["too_large"]
    assert [s["text"] for s in samples] == ([] if name in ("note.txt", "page.html.gz") else ["a short note"])
    assert peak < 8 * SMALL.max_record_bytes, f"peak {peak / 1e6:.1f} MB while reading {name}"


def test_warc_with_a_corrupt_record_keeps_the_good_one(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    writer = WARCWriter(buffer, gzip=False)
    headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.0")
    body = (
        "<html><body><article>"
        + "<p>Influenza vaccination is advised every autumn.</p>" * 5
        + "</article></body></html>"
    )
    payload = io.BytesIO(body.encode())
    url = "https://example.org/flu"
    record = writer.create_warc_record(url, "response", payload=payload, http_headers=headers)
    writer.write_record(record)
    path = tmp_path / "mixed.warc"
    path.write_bytes(
        buffer.getvalue() + b"WARC/1.0\r\nWARC-Type: response\r\nContent-Length: banana\r\n\r\n" + b"\0" * 64
    )
    samples, dead = read_all(path)
    assert [s["metadata"]["url"] for s in samples] == ["https://example.org/flu"]
    assert [d.reason for d in dead] == ["corrupt_warc"]


@pytest.mark.slow
def test_every_warc_edge_case_reads_or_dead_letters() -> None:
    uris = expand_inputs([str(shared("web", "warc"))])
    for uri in uris:
        samples, dead = read_all(uri, IngestConfig())
        assert not [d for d in dead if d.reason == "read_error"], uri
        if uri.endswith(("example.warc.gz", "example.warc", "whirlwind.warc.gz", "example.arc.gz")):
            assert samples and not dead, uri


@pytest.mark.slow
def test_every_decodable_pydicom_file_becomes_an_image() -> None:
    """The inventory lists every DICOM of the pydicom and pydicom-data wheels, with its shape when
    pydicom could decode it; each of those must become an image, the rest dead letters."""
    import data_store
    import pydicom

    inventory = shared("images", "pydicom", "dicom_inventory.csv")
    roots = {
        "pydicom_wheel_test_files": Path(pydicom.__file__).parent / "data" / "test_files",
        "pydicom_data_store": Path(data_store.__file__).parent / "data",
    }
    decodable = 0
    with inventory.open() as stream:
        for row in csv.DictReader(stream):
            folder, _, name = row["file"].partition("/")
            samples, dead = read_all(roots[folder] / name, IngestConfig())
            assert not [d for d in dead if d.reason == "read_error"], name
            if row["shape"] and not row["error"]:
                decodable += 1
                lossy_jpeg = row["transfer_syntax"] in ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51")
                assert len(samples) == 1, (name, dead)
                assert samples[0]["image_format"] == ("jpeg" if lossy_jpeg else "png"), name
                height, width = (int(v) for v in row["shape"].split("x")[:2])
                assert (samples[0]["image_height"], samples[0]["image_width"]) == (height, width), name
            elif not samples:
                assert len(dead) == 1 and dead[0].reason in {"corrupt_dicom", "no_pixel_data"}, (name, dead)
    assert decodable > 100


@pytest.mark.slow
def test_every_synthea_bundle_names_its_conditions_and_medications() -> None:
    bundles = sorted(shared("phi", "synthea_fhir", "bundles").glob("*.json"))
    for path in bundles:
        resources = [entry["resource"] for entry in json.loads(path.read_text())["entry"]]
        [sample], dead = read_all(path, IngestConfig())
        assert not dead
        for resource in resources:
            concept = resource.get("code") or resource.get("medicationCodeableConcept")
            if resource["resourceType"] in ("Condition", "MedicationRequest"):
                assert concept["text"] in sample["text"], (path.name, concept["text"])


@pytest.mark.slow
def test_every_shared_image_and_dicom_folder_reads_without_crashing() -> None:
    uris = expand_inputs([str(shared("images", "deid_data_dicom"))])
    kinds: dict[str, int] = {}
    for uri in uris:
        samples, dead = read_all(uri, IngestConfig())
        assert not [d for d in dead if d.reason == "read_error"], uri
        for sample in samples:
            kinds[sample["source_kind"]] = kinds.get(sample["source_kind"], 0) + 1
    assert kinds.get("image", 0) >= 12 + 8  # 12 DICOMs and their 8 PNG previews
