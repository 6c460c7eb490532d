"""The residual-PHI gate: an identifier that slipped past de-identification fails validation, by
expectation name and sample id, and the version is not published as LATEST."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from medcurate.config import load_config
from medcurate.pipelines import curate
from medcurate.pipelines.stage import SampleStageFn
from medcurate.privacy.beam import DeidentifyFn
from medcurate.quality import expectations
from medcurate.quality.expectations import RESIDUAL_PHI_EXPECTATION, residual_phi_kinds, validate_shards
from medcurate.schemas.sample import new_sample, samples_to_table

# Invented identifiers in the shapes the gate looks for.
SSN = "219-09-9999"
PHONE = "(412) 555-0147"
EMAIL = "w.ashgrove@example.net"
MRN = "MRN: 88310442"


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        (f"Identity checked, SSN {SSN}.", "ssn"),
        (f"Daughter reachable on {PHONE} after six.", "phone"),
        (f"Results sent to {EMAIL} today.", "email"),
        (f"Admitted under {MRN} for observation.", "mrn"),
        (f"SSN {SSN}, phone {PHONE}.", "ssn,phone"),
    ],
)
def test_patterns_find_each_kind(text: str, kinds: str) -> None:
    assert residual_phi_kinds(text) == kinds


@pytest.mark.parametrize(
    "text",
    [
        "Redacted: SSN <SSN>, phone <PHONE>, e-mail <EMAIL>.",
        "Not an SSN (area 000): 000-12-3456; nor 666-12-3456; dose 5-10 mg; BP 120/80.",
        "Guideline 2019-04-1234 and ICD-10 I21.4 with 12 mg/kg.",
        "The trial enrolled 1,234 patients; 555 were followed for 10 years.",
        "MRN requested from the records office.",
    ],
)
def test_no_false_alarm_on_redacted_or_clinical_numbers(text: str) -> None:
    assert residual_phi_kinds(text) is None


def _shard(path: Path, texts: list[str]) -> list[str]:
    rows = [
        new_sample(
            source_kind="clinical",
            modality="text",
            source_uri=f"notes/invented-{i}.txt",
            text=text,
            config_hash="h",
            run_id="r",
        )
        for i, text in enumerate(texts)
    ]
    pq.write_table(samples_to_table(rows), path)
    return [row["id"] for row in rows]


def test_gate_names_expectation_and_samples_never_values(tmp_path: Path) -> None:
    ids = _shard(
        tmp_path / "part.parquet",
        [f"Stable overnight. SSN {SSN} on the form.", "Stable overnight, no complaints.", f"Call {PHONE}."],
    )
    outcome = validate_shards([str(tmp_path / "part.parquet")], "h")
    assert not outcome.passed
    (failure,) = [f for f in outcome.failed if f.startswith(RESIDUAL_PHI_EXPECTATION)]
    assert ids[0] in failure and ids[2] in failure and ids[1] not in failure
    everything = json.dumps({"failed": outcome.failed, "results": outcome.results}, default=str)
    for value in (SSN, "9999", "555-0147", PHONE):
        assert value not in everything


def test_clean_shard_passes(tmp_path: Path) -> None:
    _shard(
        tmp_path / "part.parquet", ["Stable overnight, no complaints.", "Seen in clinic, <PHONE> redacted."]
    )
    assert validate_shards([str(tmp_path / "part.parquet")], "h").passed


def test_large_shard_is_validated_in_slices(tmp_path: Path, monkeypatch) -> None:
    """A shard is read a slice at a time (bounded memory); a bad row in a later slice still fails."""
    monkeypatch.setattr(expectations, "VALIDATE_ROWS", 2)
    ids = _shard(tmp_path / "part.parquet", ["Stable overnight."] * 4 + [f"SSN {SSN} on the form."])
    outcome = validate_shards([str(tmp_path / "part.parquet")], "h")
    assert sorted(outcome.results["shards"]) == ["part.parquet", "part.parquet@2", "part.parquet@4"]
    (failure,) = [f for f in outcome.failed if f.startswith(RESIDUAL_PHI_EXPECTATION)]
    assert ids[4] in failure and not any(sample_id in failure for sample_id in ids[:4])


@pytest.mark.slow
def test_slipped_ssn_fails_the_run_and_is_not_published(tmp_path: Path, monkeypatch) -> None:
    """De-identification is made to pass text through unchanged (a miss); the gate stops the version."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "note_a.txt").write_text(
        f"Nursing note. Patient rested well overnight and ate breakfast. SSN {SSN} recorded at intake.\n"
    )
    (inputs / "note_b.txt").write_text(
        "Nursing note. Patient walked twice in the hallway with a frame today.\n"
    )
    monkeypatch.setattr(DeidentifyFn, "setup", SampleStageFn.setup)
    monkeypatch.setattr(DeidentifyFn, "process_samples", lambda self, samples: samples)
    # In process: the patched stage exists in this process only, not in worker processes.
    in_process = ["runner.direct_running_mode=in_memory", "runner.direct_num_workers=1"]
    config = load_config(
        None,
        [f"ingest.inputs=[{inputs}]", f"publish.output_dir={tmp_path / 'out'}", "dataset=gate", *in_process],
    )
    result = curate.run(config)
    validation = result.manifest.validation
    assert not validation.passed
    (failure,) = [f for f in validation.failed_expectations if f.startswith(RESIDUAL_PHI_EXPECTATION)]
    bad_id = next(
        row["id"]
        for row in pq.read_table(Path(result.version_dir) / "data").to_pylist()
        if SSN in row["text"]
    )
    assert bad_id in failure and SSN not in failure
    assert not (tmp_path / "out" / "gate" / "LATEST").exists()
