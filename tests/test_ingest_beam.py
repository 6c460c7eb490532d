"""The Beam adapter and the `medcurate ingest` command over the same small real files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.util import assert_that, equal_to

from medcurate.pipelines.config import IngestConfig
from medcurate.pipelines.ingest import cli
from medcurate.pipelines.ingest.beam import IngestSources
from medcurate.pipelines.stage import DEAD_LETTERS, SAMPLES
from medcurate.schemas.sample import SAMPLE_SCHEMA


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    (folder / "notes").mkdir(parents=True)
    (folder / "notes" / "a.txt").write_text("Follow-up visit: blood pressure controlled on lisinopril.")
    (folder / "notes" / "b.jsonl").write_text(
        json.dumps({"text": "Asthma, inhaler refilled."}) + "\n{broken\n"
    )
    (folder / "scan.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)  # a header and nothing else
    return folder


def test_ingest_sources_routes_samples_and_dead_letters(inputs: Path) -> None:
    with beam.Pipeline(runner=FnApiRunner()) as pipeline:
        outputs = pipeline | IngestSources(IngestConfig(inputs=[str(inputs)]))
        texts = outputs[SAMPLES] | "Texts" >> beam.Map(lambda s: (s["source_kind"], s["text"]))
        reasons = outputs[DEAD_LETTERS] | "Reasons" >> beam.Map(lambda d: (d["stage"], d["reason"]))
        assert_that(
            texts,
            equal_to(
                [
                    ("clinical", "Follow-up visit: blood pressure controlled on lisinopril."),
                    ("clinical", "Asthma, inhaler refilled."),
                ]
            ),
            label="samples",
        )
        assert_that(
            reasons, equal_to([("ingest", "malformed_record"), ("ingest", "corrupt_image")]), label="dead"
        )


def test_ingest_sources_fails_fast_on_a_pattern_matching_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="typo"):
        IngestSources(IngestConfig(inputs=[str(tmp_path / "typo*.warc")]))


def test_ingest_command_writes_parquet_and_dead_letters(inputs: Path, tmp_path: Path, capsys) -> None:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    out = tmp_path / "out"
    args = parser.parse_args(
        ["ingest", str(inputs), "--output", str(out), "--set", "ingest.max_text_chars=40"]
    )
    assert args.handler(args, []) == 0
    table = pq.read_table(out / "samples")
    assert table.schema.equals(SAMPLE_SCHEMA, check_metadata=False)
    assert table.column("text").to_pylist() == ["Asthma, inhaler refilled."]
    dead = [json.loads(line) for line in (out / "dead_letters.jsonl").read_text().splitlines()]
    assert sorted(d["reason"] for d in dead) == ["corrupt_image", "malformed_record", "too_large"]
    assert all(set(d) == {"kind", "stage", "reason", "source_uri", "sample_id", "error_type"} for d in dead)
    printed = capsys.readouterr().out
    assert "samples: 1" in printed and "dead letter too_large: 1" in printed
