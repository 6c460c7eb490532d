"""What keeps the pipeline's memory bounded by the work: staged shards written and read back a row
group at a time, shard plans, a large line-delimited input read in parts (each record once), inputs
matched inside the pipeline, and one model per worker process."""

from __future__ import annotations

import json
import os
from pathlib import Path

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.util import assert_that, equal_to

from medcurate.config import RunnerConfig
from medcurate.pipelines.config import IngestConfig
from medcurate.pipelines.curate import gather_events, write_events
from medcurate.pipelines.ingest.beam import IngestSources
from medcurate.pipelines.ingest.sources import (
    PART_BLOCK,
    InputPath,
    NoInputError,
    match_pattern,
    part_count,
    read_source,
)
from medcurate.pipelines.options import WORKER_MALLOC, local_worker_environment, pipeline_options
from medcurate.pipelines.stage import SAMPLES
from medcurate.pipelines.staged import (
    ROW_GROUP_ROWS,
    ShardWriter,
    plan_shards,
    position_unit,
    read_rows,
    read_unit,
    row_group_units,
)
from medcurate.schemas.events import DeadLetter
from medcurate.schemas.sample import new_sample
from medcurate.stages.base import release_shared_models, shared_model


def _note(index: int) -> dict:
    return new_sample(
        source_kind="clinical",
        modality="text",
        source_uri=f"file:///notes/n{index}.txt",
        text=f"Follow-up visit {index}: the rash on the forearm has faded with the cream.",
        metadata={"note_type": "progress"},
        quality_signals={"words": 12.0},
    )


def test_staged_file_round_trips_row_group_by_row_group(tmp_path: Path) -> None:
    path = str(tmp_path / "staged" / "notes-1.parquet")
    samples = [_note(index) for index in range(ROW_GROUP_ROWS + 5)]
    writer = ShardWriter(path, row_group_bytes=1)
    for sample in samples:
        writer.write(sample)
    writer.close()
    units = row_group_units(path)
    assert [rows for _, _, rows in units] == [ROW_GROUP_ROWS, 5]
    read = [sample for unit in units for _, sample in read_unit(unit)]
    assert [s["id"] for s in read] == [s["id"] for s in samples]
    assert read[7]["metadata"] == {"note_type": "progress"}
    assert read[7]["quality_signals"] == {"words": 12.0}
    positions = [position for unit in units for position, _ in read_unit(unit)]
    assert len(set(positions)) == len(samples)


def test_rows_named_by_their_positions_are_read_back_alone(tmp_path: Path) -> None:
    folder = str(tmp_path / "staged")
    path = f"{folder}/notes-2.parquet"
    samples = [_note(index) for index in range(600)]
    writer = ShardWriter(path, row_group_bytes=1)
    for sample in samples:
        writer.write(sample)
    writer.close()
    (unit,) = row_group_units(path)
    positions = [position for position, _ in read_unit(unit)]
    wanted = [positions[i] for i in (599, 3, 256, 3, 0)]
    located = [position_unit(folder, position) for position in wanted]
    assert {(path_, index) for (path_, index, _), _ in located} == {(path, 0)}
    read = list(read_rows(located[0][0], [row for _, row in located]))
    assert [row for row, _ in read] == [0, 3, 256, 599]
    assert [sample["id"] for _, sample in read] == [samples[i]["id"] for i in (0, 3, 256, 599)]
    assert read[1][1]["metadata"] == {"note_type": "progress"}


def test_published_row_groups_follow_the_configured_bytes(tmp_path: Path) -> None:
    path = tmp_path / "part.parquet"
    writer = ShardWriter(str(path), row_group_bytes=64 * 1024 * 1024)
    for index in range(2 * ROW_GROUP_ROWS + 1):
        writer.write(_note(index))
    writer.close()
    assert pq.ParquetFile(path).metadata.num_row_groups == 1  # one group below the byte budget
    assert pq.ParquetFile(path).metadata.num_rows == 2 * ROW_GROUP_ROWS + 1


def test_shard_plan_places_every_unit_once_and_balances_rows() -> None:
    units = [(f"f{index % 3}", index, rows) for index, rows in enumerate([900, 100, 500, 500, 1000, 20])]
    plan = plan_shards(units, num_shards=3)
    assert [count for _, count, _ in plan] == [3, 3, 3]
    placed = sorted(unit for _, _, shard in plan for unit in shard)
    assert placed == sorted(units)
    loads = sorted(sum(rows for *_, rows in shard) for _, _, shard in plan)
    assert loads == [1000, 1000, 1020]
    # Nothing staged still publishes one (empty) shard; 0 shards sizes by rows.
    assert plan_shards([], 0) == [(0, 1, [])]
    assert len(plan_shards([("f", 0, 250_000)], 0)) == 3


def _jsonl(path: Path, records: int) -> Path:
    lines = [
        json.dumps({"text": f"Note {i}: blood pressure recheck, stable on the same dose."})
        for i in range(records)
    ]
    lines[70] = "{not json"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_file_read_in_parts_yields_each_record_once(tmp_path: Path) -> None:
    path = str(_jsonl(tmp_path / "notes.jsonl", 3 * PART_BLOCK + 11))
    config = IngestConfig()
    whole = list(read_source(path, config))
    parts = [list(read_source(path, config, part=(k, 3))) for k in range(3)]
    assert all(parts)  # every part has work
    key = lambda item: item.reason if isinstance(item, DeadLetter) else item["id"]  # noqa: E731
    assert sorted(map(key, (item for part in parts for item in part))) == sorted(map(key, whole))
    assert sum(isinstance(item, DeadLetter) for part in parts for item in part) == 1


def test_only_large_line_delimited_files_are_split(tmp_path: Path) -> None:
    big = _jsonl(tmp_path / "big.jsonl", 400)
    assert part_count(InputPath(str(big)), part_bytes=big.stat().st_size // 4) == 5
    assert part_count(InputPath(str(big)), part_bytes=big.stat().st_size * 2) == 1
    assert part_count(InputPath(str(big), "hidden_file"), part_bytes=1) == 1
    text = tmp_path / "note.txt"
    text.write_text("Discharged home in good condition. " * 200)
    assert part_count(InputPath(str(text)), part_bytes=10) == 1


def test_inputs_are_matched_inside_the_pipeline_and_read_once(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    _jsonl(folder / "a.jsonl", 150)
    (folder / "b.txt").write_text("Seen for a sprained ankle; advised rest and elevation.")
    assert len(list(match_pattern(str(folder)))) == 2
    config = IngestConfig(inputs=[str(folder), str(folder / "*.txt")], part_bytes=2048)
    transform = IngestSources(config)
    with beam.Pipeline(runner="FnApiRunner") as pipeline:
        counted = (pipeline | transform)[SAMPLES] | beam.combiners.Count.Globally()
        assert_that(counted, equal_to([150 - 1 + 1]))  # one bad line dead-lettered, the .txt once
    with pytest.raises(NoInputError):
        IngestSources(IngestConfig(inputs=[str(tmp_path / "missing" / "*.jsonl")]))


def test_a_model_is_loaded_once_per_process() -> None:
    loads = []

    def load() -> object:
        loads.append(1)
        return object()

    first = shared_model("test-kind", "key-a", load)
    assert shared_model("test-kind", "key-a", load) is first
    assert shared_model("test-kind", "key-b", load) is not first
    assert len(loads) == 2
    # The passes after the per-sample stages drop them; a later use loads again.
    release_shared_models()
    assert shared_model("test-kind", "key-a", load) is not first
    assert len(loads) == 3


def test_report_figures_are_counted_in_duckdb_as_python_would(tmp_path: Path) -> None:
    """The run report's charts come from aggregates over the shards (no row per sample in Python);
    they must show what counting every row would."""
    import numpy as np

    from medcurate.quality.report import SCORE_BINS, ShardFigures

    rng = np.random.default_rng(3)
    samples = []
    for index in range(300):
        sample = _note(index)
        sample.update(
            source_kind=("clinical", "web")[index % 2],
            language=(None, "en", "de")[index % 3],
            quality_score=float(rng.random()) if index % 7 else 1.0,
            relevance_score=float(rng.random()),
            dedup_cluster_size=(None, 1, 2)[index % 3],
            review_reasons=["low_quality"] * (index % 2),
        )
        samples.append(sample)
    path = str(tmp_path / "part-00000-of-00001.parquet")
    writer = ShardWriter(path)
    for sample in samples:
        writer.write(sample)
    writer.close()
    figures = ShardFigures([path])
    try:
        languages = figures.counts("coalesce(language, 'und')", "modality = 'text'")
        assert languages == {"und": 100, "en": 100, "de": 100}
        assert figures.counts("coalesce(dedup_cluster_size, 1)::BIGINT") == {1: 200, 2: 100}
        assert figures.counts("unnest(review_reasons)") == {"low_quality": 150}
        for field in ("quality_score", "relevance_score"):
            for kind, counts in figures.bins(field).items():
                values = [s[field] for s in samples if s["source_kind"] == kind]
                expected = np.histogram(values, bins=SCORE_BINS, range=(0, 1))[0].tolist()
                assert counts == expected, (field, kind)
        assert figures.image_sizes() == []
    finally:
        figures.close()
    assert ShardFigures([]).counts("language") == {}


def test_the_pipeline_command_does_not_load_spacy() -> None:
    """The command that drives the workers needs no NLP model library (about 40 MB more in the
    driver, several seconds per start); the stop-word list is read from spaCy's source as is."""
    import subprocess
    import sys

    code = (
        "import sys; from medcurate.cli import skip_unused_frameworks; skip_unused_frameworks(); "
        "import medcurate.pipelines.curate; "
        "print(sorted({'spacy', 'presidio_analyzer', 'thinc'} & set(sys.modules)))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
    from spacy.lang.en.stop_words import STOP_WORDS as SPACY_STOP_WORDS

    from medcurate.privacy.stop_words import STOP_WORDS

    assert frozenset(SPACY_STOP_WORDS) == STOP_WORDS


def test_local_worker_processes_get_the_malloc_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Worker processes of a local run start with two malloc arenas and a fixed mmap threshold (less
    memory held after each stage); the command's own environment is left as it was."""
    for name in WORKER_MALLOC:
        monkeypatch.delenv(name, raising=False)
    runner = RunnerConfig(direct_num_workers=1)
    with local_worker_environment(runner), beam.Pipeline(options=pipeline_options(runner, [])) as pipeline:
        # os.getenv is pickled by name, so it reads the worker process's own environment.
        seen = pipeline | beam.Create(sorted(WORKER_MALLOC)) | beam.Map(lambda name: (name, os.getenv(name)))
        assert_that(seen, equal_to(sorted(WORKER_MALLOC.items())))
    assert not set(WORKER_MALLOC) & set(os.environ)


def test_events_are_written_where_produced_and_gathered_after_the_run(tmp_path: Path) -> None:
    """Drops from several collections (several stages) go to per-bundle files, no shuffle; after
    the run they are one JSON-lines file with every event once. No events: an empty file."""
    staging = str(tmp_path / "staging")
    first = [{"reason": "dedup/near_duplicate", "sample_id": f"a{i}"} for i in range(30)]
    second = [{"reason": "quality/too_short", "sample_id": f"b{i}"} for i in range(7)]
    with beam.Pipeline(runner="FnApiRunner") as pipeline:
        collections = [
            pipeline | "First" >> beam.Create(first),
            pipeline | "Second" >> beam.Create(second),
        ]
        write_events(collections, staging, "drops")
    path = gather_events(staging, "drops")
    lines = Path(path).read_text().splitlines()
    assert sorted(lines) == sorted(json.dumps(event, sort_keys=True) for event in first + second)
    assert Path(gather_events(staging, "dead_letters")).read_text() == ""
