"""FHIR and generic JSON de-identification by field rules, with the real text de-identifier."""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

import pytest

from medcurate.privacy import cli as deid_cli
from medcurate.privacy.config import DeidConfig
from medcurate.privacy.fhir import FhirDeidentifier
from medcurate.privacy.text import TextDeidentifier

SYNTHEA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "phi" / "synthea_fhir"
PATIENT_ID = "3f1c9a52-7d4e-4b8a-9c1d-2e5f6a7b8c9d"
PRACTITIONER_URL = "urn:uuid:8a7b6c5d-4e3f-4a1b-9c8d-7e6f5a4b3c2d"
# Fake PHI in every place a FHIR bundle holds it.
CANARIES = [
    "Wilhelmina", "Quarterfield", "Ottoline", "617-555-0142", "wq@example.org", "48 Juniper Hollow Rd",
    "Saugus", "01906", "42.5001", "-70.8578", "1961-04-17", "999-71-2233", "S99988877", "X12345678X",
    "Ravensworth Family Clinic", "Bartholomew Nkemelu", "2019-03-02", "Hepzibah Tillinghast", "Oakridge",
    PATIENT_ID, "1.2.840.99999.1.42.7",
]  # fmt: skip


def _bundle() -> dict:
    patient = {
        "resourceType": "Patient",
        "id": PATIENT_ID,
        "text": {"status": "generated", "div": "<div>Wilhelmina Quarterfield, Saugus</div>"},
        "extension": [
            {
                "url": "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName",
                "valueString": "Hepzibah Tillinghast",
            },
            {
                "url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace",
                "valueAddress": {"city": "Oakridge", "state": "MA", "country": "US"},
            },
        ],
        "identifier": [
            {"system": "https://github.com/synthetichealth/synthea", "value": PATIENT_ID},
            {"type": {"text": "Social Security Number"}, "system": "http://hl7.org/fhir/sid/us-ssn", "value": "999-71-2233"},
            {"type": {"text": "Driver's License"}, "value": "S99988877"},
            {"type": {"text": "Passport Number"}, "value": "X12345678X"},
        ],
        "name": [{"use": "official", "family": "Quarterfield", "given": ["Wilhelmina", "Ottoline"], "prefix": ["Mrs."]}],
        "telecom": [{"system": "phone", "value": "617-555-0142"}, {"system": "email", "value": "wq@example.org"}],
        "gender": "female",
        "birthDate": "1961-04-17",
        "address": [
            {
                "extension": [
                    {
                        "url": "http://hl7.org/fhir/StructureDefinition/geolocation",
                        "extension": [{"url": "latitude", "valueDecimal": 42.5001}, {"url": "longitude", "valueDecimal": -70.8578}],
                    }
                ],
                "line": ["48 Juniper Hollow Rd"],
                "city": "Saugus",
                "state": "MA",
                "postalCode": "01906",
            }
        ],
    }  # fmt: skip
    practitioner = {
        "resourceType": "Practitioner",
        "id": "8a7b6c5d-4e3f-4a1b-9c8d-7e6f5a4b3c2d",
        "name": [{"family": "Nkemelu", "given": ["Bartholomew"], "prefix": ["Dr."]}],
    }
    encounter = {
        "resourceType": "Encounter",
        "id": "e1",
        "subject": {"reference": f"urn:uuid:{PATIENT_ID}"},
        "participant": [{"individual": {"reference": PRACTITIONER_URL, "display": "Dr. Bartholomew Nkemelu"}}],
        "serviceProvider": {"reference": "Organization/77", "display": "Ravensworth Family Clinic"},
        "period": {"start": "2019-03-02T10:00:00+00:00", "end": "2019-03-05T09:00:00+00:00"},
        "reasonCode": [{"coding": [{"system": "http://snomed.info/sct", "code": "195662009", "display": "Acute viral pharyngitis"}]}],
        "note": [{"text": "Seen with daughter Hepzibah Tillinghast, call 617-555-0142."}],
    }  # fmt: skip
    study = {
        "resourceType": "ImagingStudy",
        "id": "s1",
        "identifier": [{"value": "urn:oid:1.2.840.99999.1.42.7"}],
    }
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": f"urn:uuid:{PATIENT_ID}", "resource": patient},
            {"fullUrl": PRACTITIONER_URL, "resource": practitioner},
            {"fullUrl": "urn:uuid:0b1c2d3e-4f50-4a61-8b72-9c83d4e5f607", "resource": encounter},
            {"fullUrl": "urn:uuid:1b1c2d3e-4f50-4a61-8b72-9c83d4e5f607", "resource": study},
        ],
    }


@pytest.fixture(scope="module")
def text() -> TextDeidentifier:
    return TextDeidentifier(DeidConfig())


def _resources(bundle: dict) -> dict[str, dict]:
    return {e["resource"]["resourceType"]: e["resource"] for e in bundle["entry"]}


def test_no_canary_survives_and_links_hold(text: TextDeidentifier) -> None:
    original = _bundle()
    snapshot = json.dumps(original)
    out = FhirDeidentifier(DeidConfig(), text).deidentify([original])[0]
    assert json.dumps(original) == snapshot, "the input must not be modified"
    dumped = json.dumps(out, ensure_ascii=False).lower()
    for canary in CANARIES:
        assert canary.lower() not in dumped, canary
    assert "6175550142" not in dumped.replace("-", "")
    resources = _resources(out)
    patient, encounter = resources["Patient"], resources["Encounter"]
    # References still resolve to the (remapped) resources; clinical content and years stay.
    assert encounter["subject"]["reference"] == out["entry"][0]["fullUrl"] == f"urn:uuid:{patient['id']}"
    assert encounter["participant"][0]["individual"]["reference"] == out["entry"][1]["fullUrl"]
    assert encounter["participant"][0]["individual"]["display"] == "<PRACTITIONER>"
    assert (
        encounter["reasonCode"][0]["coding"][0]
        == _bundle()["entry"][2]["resource"]["reasonCode"][0]["coding"][0]
    )
    assert patient["birthDate"] == "1961" and encounter["period"]["start"] == "2019"
    assert patient["address"] == [{"state": "MA"}] and patient["gender"] == "female"
    assert "<PERSON>" in encounter["note"][0]["text"] and "<PHONE_NUMBER>" in encounter["note"][0]["text"]


def test_date_shift_keeps_intervals_and_very_old_birth_years_are_folded(text: TextDeidentifier) -> None:
    config = DeidConfig(operators={"DATE": "date_shift"})
    bundle = _bundle()
    bundle["entry"][0]["resource"]["birthDate"] = f"{date.today().year - 95}-01-01"
    out = _resources(FhirDeidentifier(config, text).deidentify([bundle])[0])
    period = out["Encounter"]["period"]
    start, end = date.fromisoformat(period["start"][:10]), date.fromisoformat(period["end"][:10])
    assert start != date(2019, 3, 2) and (end - start).days == 3
    assert period["start"].endswith("T10:00:00+00:00")
    assert out["Patient"]["birthDate"] == str(date.today().year - 90)


def test_generic_json_by_key_names(text: TextDeidentifier) -> None:
    record = {
        "first_name": "Wilhelmina",
        "LastName": "Quarterfield",
        "dob": "04/17/1961",
        "contact": {"phone": "617-555-0142", "email": "wq@example.org", "zip": "01906"},
        "notes": ["Lives in Saugus with husband Bartholomew Nkemelu."],
        "diagnosis": "Noonan syndrome",
    }
    out = FhirDeidentifier(DeidConfig(), text).deidentify([record])[0]
    dumped = json.dumps(out).lower()
    for canary in (
        "wilhelmina",
        "quarterfield",
        "1961",
        "617-555-0142",
        "wq@example",
        "01906",
        "bartholomew",
    ):
        assert canary not in dumped, canary
    assert out["diagnosis"] == "Noonan syndrome"


def _synthea_golds(count: int) -> list[dict]:
    if not SYNTHEA.is_dir():
        pytest.skip(f"Synthea evaluation data not found at {SYNTHEA}")
    with (SYNTHEA / "phi_gold.jsonl").open() as handle:
        return [json.loads(line) for line, _ in zip(handle, range(count), strict=False)]


@pytest.mark.slow
def test_deid_fhir_cli_leaves_no_synthea_gold_value(tmp_path: Path) -> None:
    golds = _synthea_golds(2)
    source = tmp_path / "in"
    source.mkdir()
    for gold in golds:
        (source / gold["bundle"]).write_bytes((SYNTHEA / "bundles" / gold["bundle"]).read_bytes())
    (source / "broken.json").write_text("{not json")
    parser = argparse.ArgumentParser(prog="medcurate")
    deid_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["deid", "fhir", str(source), str(tmp_path / "out")])
    assert args.handler(args, []) == 1  # the unreadable file is reported by count
    for gold in golds:
        output = (tmp_path / "out" / gold["bundle"]).read_text(encoding="utf-8").lower()
        for item in gold["phi"]:
            value = str(item["value"]).lower()
            if value.isdigit() and len(value) <= 3:
                # Short practitioner numbers also occur as codes and amounts: the field must be gone.
                assert f'"value": "{value}"' not in output
            else:
                assert value not in output, item["type"]
    assert not (tmp_path / "out" / "broken.json").exists()
