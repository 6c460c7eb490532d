"""PHI probes: over a thousand invented identifiers in 38 clinical phrasings, through `deid text`
and through the whole pipeline; not one value may survive."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import pytest

from medcurate.config import load_config
from medcurate.pipelines import curate
from medcurate.privacy import cli as deid_cli
from medcurate.privacy.probes import PHRASINGS, Probe, leaked, probes

pytestmark = pytest.mark.slow
COUNT = 1140  # 30 probes of each phrasing


@pytest.fixture(scope="module")
def probe_set() -> list[Probe]:
    made = list(probes(COUNT, seed=2026))
    assert len(made) >= 1000 and len({p.phrasing for p in made}) == len(PHRASINGS) >= 30
    return made


def _write(probe_set: list[Probe], path: Path) -> None:
    path.write_text(
        "".join(json.dumps({"id": f"probe-{i}", "text": p.text}) + "\n" for i, p in enumerate(probe_set))
    )


def test_no_probe_value_survives_deid_text(probe_set: list[Probe], tmp_path: Path) -> None:
    source, target = tmp_path / "probes.jsonl", tmp_path / "out.jsonl"
    _write(probe_set, source)
    parser = argparse.ArgumentParser(prog="medcurate")
    deid_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["deid", "text", "--input", str(source), "--output", str(target)])
    assert args.handler(args, []) == 0
    outputs = [json.loads(line)["text"] for line in target.read_text().splitlines()]
    leaks = Counter(
        probe.phrasing
        for probe, output in zip(probe_set, outputs, strict=True)
        for v in probe.values
        if leaked(v, output)
    )
    assert not leaks, f"values leaked, by phrasing: {dict(leaks)}"


def test_no_probe_value_reaches_any_artifact_of_a_run(probe_set: list[Probe], tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    _write(probe_set, inputs / "probes.jsonl")
    output = tmp_path / "out"
    config = load_config(
        None, [f"ingest.inputs={json.dumps([str(inputs)])}", f"publish.output_dir={output}", "dataset=probes"]
    )
    result = curate.run(config)
    assert result.manifest.rows > 0
    blob = "\n".join(p.read_bytes().decode("latin-1") for p in output.rglob("*") if p.is_file())
    import pyarrow.parquet as pq

    shards = [p for p in output.rglob("*.parquet")]
    blob += json.dumps(
        [pq.read_table(p).drop_columns(["image_bytes"]).to_pylist() for p in shards], default=str
    )
    survived = Counter(probe.phrasing for probe in probe_set for v in probe.values if leaked(v, blob))
    assert not survived, f"values found in the run's files, by phrasing: {dict(survived)}"
