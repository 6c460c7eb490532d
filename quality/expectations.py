"""The Great Expectations gate: a version is published as LATEST only if its shards pass this suite."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
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


# Residual-PHI patterns (HIPAA Safe Harbor identifiers with a fixed shape): what de-identification
# must never leave in published text. The gate records which kinds matched in which samples, never
# the matched value. SSN per the SSA's rules (no area 000, 666 or 9xx; no group 00; no serial 0000).
RESIDUAL_PHI_PATTERNS = {
    "ssn": re.compile(r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b"),
    "phone": re.compile(r"(?<![\w-])(?:\+?1[-.\s]?)?(?:\([2-9]\d{2}\)\s?|[2-9]\d{2}[-.])\d{3}[-.]\d{4}\b"),
    "email": re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}\b"),
    "mrn": re.compile(r"\b(?:MRN|medical record (?:number|no\.?))\s*[:#]?\s*\d{5,}\b", re.IGNORECASE),
}
RESIDUAL_PHI_COLUMN = "residual_phi"
RESIDUAL_PHI_EXPECTATION = "expect_no_residual_phi"


def residual_phi_kinds(text: str | None) -> str | None:
    """Comma-separated kinds of identifier patterns found in `text`, or None when there are none."""
    if not text:
        return None
    found = [kind for kind, pattern in RESIDUAL_PHI_PATTERNS.items() if pattern.search(text)]
    return ",".join(found) or None


def _residual_phi_expectation():
    import great_expectations as gx

    class ExpectNoResidualPhi(gx.expectations.ExpectColumnValuesToBeNull):
        """Published text holds no SSN, phone, e-mail or MRN pattern (the column lists kinds found)."""

        description: str = "No SSN, phone number, e-mail address or MRN pattern in published text"

    return ExpectNoResidualPhi(column=RESIDUAL_PHI_COLUMN)


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
    suite.add_expectation(_residual_phi_expectation())
    return suite


# The columns the cross-shard checks below read.
CROSS_SHARD_COLUMNS = ("id", "modality", "text", "image_bytes", "redactions", "texts", "images", "image_meta")


def _shards_source(con: duckdb.DuckDBPyConnection, paths: list[str]) -> str:
    """A table expression over the shards: DuckDB reads local files itself; shards on an object
    store (gs://, s3://) are read through Beam's filesystems, which hold the credentials."""
    if not any(storage.is_remote(path) for path in paths):
        return read_parquet_sql(paths)
    tables = []
    for path in paths:
        with FileSystems.open(path) as handle:
            tables.append(pq.read_table(handle, columns=[*CROSS_SHARD_COLUMNS]))
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


def _unexpected_ids(result: dict[str, Any], limit: int = 20) -> list[str]:
    """Sample ids of the rows an expectation rejected (the first `limit`, then a count)."""
    ids = sorted(
        {str(row.get("id")) for row in result.get("unexpected_index_list") or [] if isinstance(row, dict)}
    )
    return ids[:limit] + ([f"... {len(ids) - limit} more"] if len(ids) > limit else [])


# Rows of a shard validated at once: the pandas frame and the texts' residual-PHI scan are several
# times the rows' Parquet size, so a shard is validated in slices (results keyed `shard@first row`
# after its first slice), never whole.
VALIDATE_ROWS = 20_000


def _shard_slices(paths: list[str]) -> Iterator[tuple[str, int, pa.Table]]:
    """(shard path, index of the slice's first row, slice) over every shard, `VALIDATE_ROWS` rows
    at a time; an empty shard gives one empty slice (its column expectations still run)."""
    for path in paths:
        with FileSystems.open(path) as handle:
            reader = pq.ParquetFile(handle)
            columns = [*VALIDATED_COLUMNS, "text"]
            first = 0
            for batch in storage.row_group_batches(reader, VALIDATE_ROWS, columns):
                yield path, first, pa.Table.from_batches([batch])
                first += batch.num_rows
            if first == 0:
                yield path, 0, reader.schema_arrow.empty_table().select(columns)


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
    # Unexpected rows are named by sample id; the residual-PHI column holds kinds, not values.
    result_format = {"result_format": "COMPLETE", "unexpected_index_column_names": ["id"]}
    for path, first, table in _shard_slices(paths):
        frame = table.drop_columns(["text"]).to_pandas()
        frame[RESIDUAL_PHI_COLUMN] = [residual_phi_kinds(text) for text in table.column("text").to_pylist()]
        result = batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(
            suite, result_format=result_format
        )
        del frame
        shard = path.rsplit("/", 1)[-1]
        per_shard[shard if first == 0 else f"{shard}@{first}"] = result.to_json_dict()
        for outcome in result.results:
            if not outcome.success:
                config = outcome.expectation_config
                name = f"{config.type}({config.kwargs.get('column')})"
                ids = _unexpected_ids(outcome.result)
                failed.add(
                    f"{name}: samples {', '.join(ids)}" if config.type == RESIDUAL_PHI_EXPECTATION else name
                )
    cross = _cross_shard_checks(paths) if paths else {}
    failed.update(f"{name}: {bad} rows" for name, bad in cross.items() if bad)
    results = {"suite": SUITE_NAME, "shards": per_shard, "cross_shard_offending_rows": cross}
    return ValidationOutcome(passed=not failed, failed=sorted(failed), results=results)
