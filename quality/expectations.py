"""The Great Expectations gate: a version is published as LATEST only if its shards pass this suite."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from medcurate.schemas.sample import SAMPLE_SCHEMA, Modality, ReviewStatus, SourceKind
from medcurate.warehouse import storage
from medcurate.warehouse.catalog import read_parquet_sql

SUITE_NAME = "medcurate-samples"
# Content and nested columns stay out of the DataFrame: the suite's results quote unexpected values,
# so no column that can hold PHI is given to it, and image bytes would cost as much memory as the shard.
VALIDATED_COLUMNS = [
    f.name
    for f in SAMPLE_SCHEMA
    if f.name
    not in (
        *("text", "image_bytes", "metadata", "quality_signals", "redactions", "review_reasons"),
        *("texts", "images", "image_meta"),  # multimodal parts: content, and image bytes
    )
]


def _quiet_great_expectations() -> None:
    """Its loggers set their own INFO level on import; their lines are noise in a pipeline run."""
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("great_expectations"):
            logging.getLogger(name).setLevel(logging.WARNING)


@dataclass(frozen=True)
class ValidationOutcome:
    passed: bool
    failed: list[str]
    results: dict[str, Any]


def _suite(config_hash: str):
    import great_expectations as gx

    e = gx.expectations
    suite = gx.ExpectationSuite(name=SUITE_NAME)
    for column in ("id", "source_kind", "modality", "source_uri", "review_status", "run_id"):
        suite.add_expectation(e.ExpectColumnValuesToNotBeNull(column=column))
    suite.add_expectation(e.ExpectColumnValuesToBeUnique(column="id"))
    suite.add_expectation(
        e.ExpectColumnValuesToBeInSet(column="source_kind", value_set=[k.value for k in SourceKind])
    )
    suite.add_expectation(
        e.ExpectColumnValuesToBeInSet(column="modality", value_set=[m.value for m in Modality])
    )
    suite.add_expectation(
        e.ExpectColumnValuesToBeInSet(column="review_status", value_set=[s.value for s in ReviewStatus])
    )
    suite.add_expectation(e.ExpectColumnValuesToBeInSet(column="config_hash", value_set=[config_hash]))
    suite.add_expectation(e.ExpectColumnValuesToBeBetween(column="language_score", min_value=0, max_value=1))
    suite.add_expectation(e.ExpectColumnValuesToBeBetween(column="deid_confidence", min_value=0, max_value=1))
    suite.add_expectation(e.ExpectColumnValuesToBeBetween(column="image_width", min_value=1))
    suite.add_expectation(e.ExpectColumnValuesToBeBetween(column="image_height", min_value=1))
    return suite


def _shards_source(con: duckdb.DuckDBPyConnection, paths: list[str]) -> str:
    """A table expression over the shards: DuckDB reads local files itself; shards on an object
    store (gs://, s3://) are read through Beam's filesystems, which hold the credentials."""
    if not any(storage.is_remote(path) for path in paths):
        return read_parquet_sql(paths)
    tables = []
    for path in paths:
        with FileSystems.open(path) as handle:
            tables.append(
                pq.read_table(handle, columns=["id", "modality", "text", "image_bytes", "redactions"])
            )
    con.register("shards", pa.concat_tables(tables))
    return "shards"


def _cross_shard_checks(paths: list[str]) -> dict[str, int]:
    """Checks a per-DataFrame suite cannot express: counts of offending rows across all shards."""
    con = duckdb.connect()
    source = _shards_source(con, paths)
    checks = {
        "id_unique_across_shards": f"SELECT count(*) - count(DISTINCT id) FROM {source}",
        "text_present_for_text_samples": f"SELECT count(*) FROM {source} "
        "WHERE modality = 'text' AND (text IS NULL OR text = '')",
        "image_present_for_image_samples": f"SELECT count(*) FROM {source} "
        "WHERE modality = 'image' AND image_bytes IS NULL",
        "redactions_within_text": f"SELECT count(*) FROM (SELECT text, unnest(redactions) AS r FROM {source}) "
        "WHERE r.start < 0 OR r.end < r.start OR r.end > length(text)",
        # OBELICS layout: equal lengths, exactly one of text and image at every position.
        "interleaved_lists_aligned": f"SELECT count(*) FROM {source} "
        "WHERE (modality = 'multimodal' AND (texts IS NULL OR images IS NULL)) "
        "OR ((texts IS NOT NULL OR images IS NOT NULL) AND (len(texts) IS DISTINCT FROM len(images) "
        "OR len(image_meta) IS DISTINCT FROM len(images) "
        "OR len(list_filter(range(1, len(images) + 1), lambda i: (texts[i] IS NULL) = (images[i] IS NULL))) > 0))",
    }
    with con:
        return {name: con.execute(sql).fetchone()[0] for name, sql in checks.items()}


def validate_shards(paths: list[str], config_hash: str) -> ValidationOutcome:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    _quiet_great_expectations()

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch_definition = (
        context.data_sources.add_pandas("shards")
        .add_dataframe_asset("samples")
        .add_batch_definition_whole_dataframe("all")
    )
    suite = _suite(config_hash)
    failed: set[str] = set()
    per_shard: dict[str, Any] = {}
    for path in paths:
        with FileSystems.open(path) as handle:
            frame = pq.read_table(handle, columns=VALIDATED_COLUMNS).to_pandas()
        result = batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(suite)
        per_shard[path.rsplit("/", 1)[-1]] = result.to_json_dict()
        for outcome in result.results:
            if not outcome.success:
                config = outcome.expectation_config
                failed.add(f"{config.type}({config.kwargs.get('column')})")
    cross = _cross_shard_checks(paths) if paths else {}
    failed.update(f"{name}: {bad} rows" for name, bad in cross.items() if bad)
    results = {"suite": SUITE_NAME, "shards": per_shard, "cross_shard_offending_rows": cross}
    return ValidationOutcome(passed=not failed, failed=sorted(failed), results=results)
