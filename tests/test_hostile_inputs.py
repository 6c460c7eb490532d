"""`medcurate run` on a hostile input folder: every path accounted for, bounded memory, no crash.

The corpus is made here from invented content: a file name that is not UTF-8, a FIFO, symlink
loops and a dangling link, empty and hidden files, a header-only CSV, a JSON `[]`, a 100,000-deep
JSON, a WARC record without a target URI, FHIR with a wrong type and an impossible birth date, an
RGB PNG just under Pillow's 89.5 MP cap and a JPEG over the decode budget. The run is a child
process so that its peak RSS can be measured on its own (`os.wait4`, from a small launcher).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
# 1.25 GiB: each worker process holds the de-identification, tagger, text-detector and quality
# models (about 0.7 GiB) while it decodes and scans the 30-megapixel photo below.
PEAK_RSS_LIMIT_KIB = 1280 * 1024
# A Synthea-style export name: first and last name in the file name (invented here).
PHI_NAME = "Ilvorna512_Quastebrek730_2b9c41d7.json"
NOTE = (
    "Follow-up visit for type 2 diabetes. The patient reports better glucose control since the "
    "metformin dose was increased, walks thirty minutes a day and has no chest pain or dyspnoea. "
    "Plan: continue metformin, repeat HbA1c in three months, annual eye examination booked."
)
PATIENT_BUNDLE = {
    "resourceType": "Bundle",
    "type": "collection",
    "entry": [
        {"resource": {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1961-04-02"}},
        {
            "resource": {
                "resourceType": "Condition",
                "id": "c1",
                "subject": {"reference": "Patient/p1"},
                "code": {"text": "Essential hypertension"},
                "onsetDateTime": "2015-06-01",
            }
        },
    ],
}


def bundle_with_patient(**patient: object) -> dict:
    bundle = json.loads(json.dumps(PATIENT_BUNDLE))
    bundle["entry"][0]["resource"].update(patient)
    return bundle


def warc_without_uri(path: Path) -> None:
    with path.open("wb") as out:
        writer = WARCWriter(out, gzip=False)
        headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.0")
        html = f"<html><body><article><p>{NOTE}</p></article></body></html>".encode()
        record = writer.create_warc_record(
            "http://example.org/page", "response", payload=io.BytesIO(html), http_headers=headers
        )
        record.rec_headers.remove_header("WARC-Target-URI")
        writer.write_record(record)


def build_corpus(root: Path) -> dict[str, str | None]:
    """The hostile folder; returns each listed path (as recorded: undecodable bytes as %XX) and
    the reason it must be skipped or dead-lettered (None: it must be read into a sample)."""
    root.mkdir()
    expected: dict[str, str | None] = {}

    def add(name: str, reason: str | None) -> Path:
        expected[str(root / name)] = reason
        return root / name

    add("note.txt", None).write_text(NOTE)
    raw_name = os.path.join(os.fsencode(root), b"caf\xe9-note-\xff.txt")
    with open(raw_name, "wb") as stream:  # a Latin-1 name: not valid UTF-8
        stream.write(NOTE.encode())
    expected[str(root / "caf%E9-note-%FF.txt")] = None
    add("empty.txt", "empty_file").touch()
    add(".hidden-note.txt", "hidden_file").write_text(NOTE)
    add(".cache", "hidden_folder").mkdir()
    (root / ".cache" / "inside.txt").write_text(NOTE)
    os.mkfifo(add("pipe", "special_file"))
    os.symlink("nowhere.txt", add("dangling.txt", "dangling_link"))
    os.symlink("loop-b", add("loop-a", "symlink_loop"))
    os.symlink("loop-a", add("loop-b", "symlink_loop"))
    (root / "sub").mkdir()
    os.symlink("..", add("sub/up", "symlink_loop"))
    locked = add("locked.txt", None)
    locked.write_text(NOTE)
    locked.chmod(0)
    if os.access(locked, os.R_OK):  # root reads it anyway
        expected[str(locked)] = None
    else:
        expected[str(locked)] = "permission_denied"
    add("header-only.csv", "no_records").write_text("id,text\n")
    add("empty-list.json", "no_records").write_text("[]")
    add("deep.json", "json_too_deep").write_text("[" * 100_000 + "]" * 100_000)
    warc_without_uri(add("no-uri.warc", "warc_record_without_uri"))
    add("wrong-type.json", "invalid_fhir_patient").write_text(
        json.dumps(bundle_with_patient(gender=["female"]))
    )
    add("future-birth.json", "impossible_birth_date").write_text(
        json.dumps(bundle_with_patient(birthDate="9999-12-31"))
    )
    add(PHI_NAME, None).write_text(json.dumps(PATIENT_BUNDLE))
    # 9,459 x 9,459 = 89,472,681 pixels: just under Pillow's cap, over the decode budget.
    Image.new("RGB", (9459, 9459), (90, 140, 200)).save(add("huge.png", "image_over_pixel_budget"))
    # 30 MP: over the 25 MP budget, so reduced to 1/2 while it is decoded.
    Image.new("RGB", (7500, 4000), (200, 120, 40)).save(add("large.jpg", None), quality=80)
    return expected


# Runs the command in argv[2:] and writes its peak RSS (KiB) to argv[1]. The command is started
# from this small process, not from pytest: a child's ru_maxrss also counts the memory of the
# process it was forked from (the kernel keeps the high-water mark across exec).
MEASURE = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
open(sys.argv[1], "w").write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_child(args: list[str], log: Path) -> tuple[int, int]:
    """Exit status and peak RSS (KiB) of `medcurate ARGS` in a child process."""
    peak = log.with_suffix(".peak")
    with log.open("wb") as output:
        code = subprocess.run(
            [sys.executable, "-c", MEASURE, str(peak), sys.executable, "-m", "medcurate.cli", *args],
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        ).returncode
    return code, int(peak.read_text())


def recorded_uris(out: Path) -> dict[str, set[str]]:
    """Every source path named in the run's outputs, by where it is named."""
    found: dict[str, set[str]] = {"published": set(), "dead_letter": set(), "drop": set()}
    for path in out.glob("dead_letter/**/*.jsonl"):
        for line in path.read_text().splitlines():
            found["dead_letter"].add(json.loads(line)["source_uri"].split("#record=")[0])
    for path in out.glob("reports/**/drops.jsonl"):
        for line in path.read_text().splitlines():
            found["drop"].add(json.loads(line)["source_uri"].split("#record=")[0])
    for path in out.glob("hostile/v*/**/*.parquet"):
        for uri in pq.read_table(path, columns=["source_uri"]).column("source_uri").to_pylist():
            found["published"].add(uri.split("#record=")[0])
    return found


def events(out: Path, pattern: str) -> list[dict]:
    return [json.loads(line) for path in out.glob(pattern) for line in path.read_text().splitlines()]


def test_hostile_folder_runs_to_the_end_with_every_input_accounted_for(tmp_path: Path) -> None:
    expected = build_corpus(tmp_path / "in")
    out = tmp_path / "out"
    log = tmp_path / "run.log"
    code, peak_kib = run_child(
        ["run", "--input", str(tmp_path / "in"), "--output", str(out), "--dataset", "hostile"], log
    )
    output = log.read_text(errors="replace")
    assert code == 0, output[-3000:]
    assert "Traceback" not in output
    assert peak_kib < PEAK_RSS_LIMIT_KIB, f"peak RSS {peak_kib / 1024:.0f} MiB"
    assert "Quastebrek" not in output and "Ilvorna" not in output, "an input file name reached the log"

    found = recorded_uris(out)
    named = set().union(*found.values())
    missing = sorted(set(expected) - named)
    assert not missing, f"inputs in no output: {missing}"
    assert named <= set(expected), sorted(named - set(expected))

    reasons = {
        event["source_uri"].split("#record=")[0]: event["reason"]
        for event in events(out, "dead_letter/**/*.jsonl") + events(out, "reports/**/drops.jsonl")
        if event["stage"] == "ingest"
    }
    for uri, reason in expected.items():
        if reason is None:
            assert uri not in reasons, (uri, reasons.get(uri))
        else:
            assert reasons.get(uri) == reason, (uri, reasons.get(uri))
    assert "read_error" not in set(reasons.values())

    summary = json.loads(next(out.glob("reports/hostile/*/summary.json")).read_text())
    assert summary["inputs"] == len(expected)
    assert summary["read"] >= summary["inputs"]
    balance = summary["published"] + sum(summary["dropped"].values()) + sum(summary["dead_lettered"].values())
    assert summary["read"] == balance

    downscaled = [
        row
        for path in out.glob("hostile/v*/**/*.parquet")
        for row in pq.read_table(path, columns=["source_uri", "image_width", "metadata"]).to_pylist()
        if row["source_uri"].endswith("large.jpg")
    ]
    if downscaled:  # published unless a later stage dropped it (it is in the drops then)
        assert downscaled[0]["image_width"] == 3750
        metadata = {pair["key"]: pair["value"] for pair in downscaled[0]["metadata"]}
        assert metadata["downscaled"] == "over_pixel_budget"
