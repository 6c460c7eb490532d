"""The input listing and the ingest core on awkward inputs, fast: every path listed with a reason,
bytes-safe names, bounded decoding, validated FHIR and actionable reason codes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to
from PIL import Image

from medcurate.pipelines.config import IngestConfig
from medcurate.pipelines.ingest.beam import IngestSources
from medcurate.pipelines.ingest.common import Rejected, display_uri, json_depth, parse_json
from medcurate.pipelines.ingest.fhir import check_resource
from medcurate.pipelines.ingest.sources import InputPath, list_inputs, read_source
from medcurate.pipelines.stage import DEAD_LETTERS, DROPS, SAMPLES
from medcurate.schemas.events import DeadLetter, Drop

CONFIG = IngestConfig()
NOTE = "Seen in clinic for knee pain after a fall; swelling settled with rest, ice and ibuprofen."


def outcomes(
    path: str | Path, config: IngestConfig = CONFIG, skip: str | None = None
) -> list[tuple[str, str]]:
    """(kind, reason) of every item read from one path; kind is sample, dead_letter or drop."""
    result = []
    for item in read_source(str(path), config, skip=skip):
        if isinstance(item, DeadLetter | Drop):
            result.append((item.kind, item.reason))
        else:
            result.append(("sample", ""))
    return result


def test_listing_names_every_path_with_why_it_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "note.txt").write_text(NOTE)
    (tmp_path / "empty.txt").touch()
    (tmp_path / ".hidden.txt").write_text(NOTE)
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("x")
    os.mkfifo(tmp_path / "pipe")
    os.symlink("missing", tmp_path / "dangling")
    os.symlink("self", tmp_path / "self")
    (tmp_path / "sub").mkdir()
    os.symlink("..", tmp_path / "sub" / "parent")
    os.symlink("../note.txt", tmp_path / "sub" / "note-link.txt")
    listed = {Path(p.uri).relative_to(tmp_path).as_posix(): p.skip for p in list_inputs([str(tmp_path)])}
    assert listed == {
        "note.txt": None,
        "empty.txt": "empty_file",
        ".hidden.txt": "hidden_file",
        ".git": "hidden_folder",
        "pipe": "special_file",
        "dangling": "dangling_link",
        "self": "symlink_loop",
        "sub/parent": "symlink_loop",
        "sub/note-link.txt": None,
    }
    # Named on purpose, a hidden file is read; a FIFO is skipped without being opened (no hang).
    assert list_inputs([str(tmp_path / ".hidden.txt")]) == [InputPath(str(tmp_path / ".hidden.txt"))]
    assert outcomes(tmp_path / "pipe") == [("drop", "special_file")]


def test_globs_match_by_component_and_double_star_crosses_folders(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("one.txt", "a/two.txt", "a/b/three.txt", "a/b/four.csv"):
        (tmp_path / name).write_text(NOTE)
    names = lambda pattern: sorted(  # noqa: E731
        Path(p.uri).relative_to(tmp_path).as_posix() for p in list_inputs([str(tmp_path / pattern)])
    )
    assert names("*.txt") == ["one.txt"]
    assert names("a/*.txt") == ["a/two.txt"]
    assert names("**/*.txt") == ["a/b/three.txt", "a/two.txt", "one.txt"]
    assert names("a/**") == ["a/b/four.csv", "a/b/three.txt", "a/two.txt"]


def test_a_name_that_is_not_utf8_is_read_and_recorded_with_escaped_bytes(tmp_path: Path) -> None:
    raw = os.path.join(os.fsencode(tmp_path), b"r\xe9sum\xe9-\xff.txt")
    with open(raw, "wb") as stream:
        stream.write(NOTE.encode())
    [listed] = list_inputs([str(tmp_path)])
    assert listed.raw == raw and InputPath.from_raw(listed.raw) == listed
    [sample] = list(read_source(listed.uri, CONFIG))
    assert sample["source_uri"] == f"{tmp_path}/r%E9sum%E9-%FF.txt"
    assert display_uri("plain/100%.txt") == "plain/100%.txt"


def test_the_pipeline_carries_undecodable_names_and_routes_skips_to_drops(tmp_path: Path) -> None:
    with open(os.path.join(os.fsencode(tmp_path), b"n\xf6te.txt"), "wb") as stream:
        stream.write(NOTE.encode())
    (tmp_path / "empty.txt").touch()
    with beam.Pipeline() as pipeline:
        out = pipeline | IngestSources(IngestConfig(inputs=[str(tmp_path)]))
        assert_that(out[SAMPLES] | "Uris" >> beam.Map(lambda s: s["source_uri"]),
                    equal_to([f"{tmp_path}/n%F6te.txt"]), label="samples")  # fmt: skip
        assert_that(out[DROPS] | "Drops" >> beam.Map(lambda e: (e["reason"], e["source_uri"])),
                    equal_to([("empty_file", f"{tmp_path}/empty.txt")]), label="drops")  # fmt: skip
        assert_that(out[DEAD_LETTERS], equal_to([]), label="dead")


def test_files_without_records_are_skipped_not_lost(tmp_path: Path) -> None:
    (tmp_path / "header.csv").write_text("id,text\n")
    (tmp_path / "list.json").write_text("[]")
    assert outcomes(tmp_path / "header.csv") == [("drop", "no_records")]
    assert outcomes(tmp_path / "list.json") == [("drop", "no_records")]


def test_json_depth_is_limited_with_its_own_reason(tmp_path: Path) -> None:
    assert json_depth({"a": [1, {"b": []}]}, 10) == 4 and json_depth(5, 10) == 0
    with pytest.raises(Rejected, match="json_too_deep"):
        parse_json("[" * 101 + "]" * 101, 100)
    assert parse_json("[" * 100 + "]" * 100, 100) is not None
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    assert outcomes(tmp_path / "deep.json") == [("dead_letter", "json_too_deep")]
    (tmp_path / "deep.jsonl").write_text(
        '{"text": "fine note here"}\n' + '{"a":' * 200 + "1" + "}" * 200 + "\n"
    )
    assert outcomes(tmp_path / "deep.jsonl") == [("sample", ""), ("dead_letter", "json_too_deep")]


def test_images_are_decoded_within_the_pixel_budget(tmp_path: Path) -> None:
    config = IngestConfig(image_pixel_budget=1_000_000)
    Image.new("RGB", (2000, 1500), (10, 90, 160)).save(tmp_path / "photo.jpg")
    Image.new("RGB", (2000, 1500), (10, 90, 160)).save(tmp_path / "scan.png")
    [sample] = list(read_source(str(tmp_path / "photo.jpg"), config))
    assert (sample["image_width"], sample["image_height"]) == (1000, 750)
    assert sample["metadata"]["downscaled"] == "over_pixel_budget"
    assert sample["metadata"]["original_size"] == "2000x1500"
    assert outcomes(tmp_path / "scan.png", config) == [("dead_letter", "image_over_pixel_budget")]
    tiny_budget = IngestConfig(image_pixel_budget=40_000)  # even 1/8 (250 x 188) is over it
    assert outcomes(tmp_path / "photo.jpg", tiny_budget) == [("dead_letter", "image_over_pixel_budget")]
    [full] = list(read_source(str(tmp_path / "photo.jpg"), CONFIG))
    assert full["image_width"] == 2000 and "downscaled" not in full["metadata"]


def test_fhir_resources_are_validated_and_impossible_dates_rejected(tmp_path: Path) -> None:
    patient = {"resourceType": "Patient", "id": "p", "gender": "male", "birthDate": "1950-07-14"}
    condition = {
        "resourceType": "Condition",
        "subject": {"reference": "Patient/p"},
        "code": {"text": "Asthma"},
        "onsetDateTime": "2001-03-02",
    }
    assert check_resource(patient) is None and check_resource(condition) is None
    assert check_resource({**patient, "gender": ["male"]}) == "invalid_fhir_patient"
    assert check_resource({**patient, "birthDate": "9999-12-31"}) == "impossible_birth_date"
    assert check_resource({**patient, "birthDate": "1650-01-01"}) == "impossible_birth_date"
    assert check_resource({**patient, "deceasedDateTime": "1940-01-01"}) == "impossible_death_date"
    assert check_resource({**condition, "onsetDateTime": "2999-01-01"}) == "date_in_future"
    assert check_resource({**condition, "code": "Asthma"}) == "invalid_fhir_condition"
    order = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "medicationCodeableConcept": {"text": "x"},
    }
    assert check_resource(order) is None  # `intent` (required) is absent: tolerated
    assert check_resource({**order, "status": ["active"]}) == "invalid_fhir_medication_request"
    assert check_resource({"resourceType": "Claim", "anything": ["goes"]}) is None  # never rendered

    def bundle(*resources: dict) -> str:
        return json.dumps({"resourceType": "Bundle", "entry": [{"resource": r} for r in resources]})

    (tmp_path / "good.json").write_text(bundle(patient, condition))
    (tmp_path / "bad.json").write_text(bundle({**patient, "gender": ["male"]}, condition))
    assert outcomes(tmp_path / "good.json") == [("sample", "")]
    assert outcomes(tmp_path / "bad.json") == [("dead_letter", "invalid_fhir_patient")]
    lines = [patient, {**condition, "onsetDateTime": "2999-01-01"}, condition]
    (tmp_path / "export.ndjson").write_text("".join(json.dumps(r) + "\n" for r in lines))
    assert outcomes(tmp_path / "export.ndjson") == [("dead_letter", "date_in_future"), ("sample", "")]
