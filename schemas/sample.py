"""The one Arrow schema of a curated sample, and helpers to build records that fit it.

Inside Beam a sample travels as a plain dict whose keys are exactly the schema's field names;
`new_sample` fills the defaults so every stage can rely on every key being present.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import pyarrow as pa

SCHEMA_VERSION = 1


class SourceKind(StrEnum):
    WEB = "web"
    IMAGE = "image"
    CLINICAL = "clinical"


class Modality(StrEnum):
    TEXT = "text"
    IMAGE = "image"


class ReviewStatus(StrEnum):
    NOT_REQUIRED = "not_required"
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


REDACTION_TYPE = pa.struct(
    [
        # Offsets into the published (de-identified) text; the original value is never stored.
        pa.field("start", pa.int32(), nullable=False),
        pa.field("end", pa.int32(), nullable=False),
        pa.field("type", pa.string(), nullable=False),
        pa.field("score", pa.float32()),
    ]
)

SAMPLE_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("source_kind", pa.string(), nullable=False),
        pa.field("modality", pa.string(), nullable=False),
        pa.field("source_uri", pa.string(), nullable=False),
        pa.field("mime_type", pa.string()),
        pa.field("text", pa.string()),
        pa.field("image_bytes", pa.binary()),
        pa.field("image_format", pa.string()),
        pa.field("image_width", pa.int32()),
        pa.field("image_height", pa.int32()),
        pa.field("image_mode", pa.string()),
        pa.field("image_phash", pa.uint64()),
        pa.field("metadata", pa.map_(pa.string(), pa.string())),
        pa.field("language", pa.string()),
        pa.field("language_score", pa.float32()),
        pa.field("quality_score", pa.float32()),
        # P(health/medical content) from the relevance model (quality_score: P(a physician accepts)).
        pa.field("relevance_score", pa.float32()),
        pa.field("quality_signals", pa.map_(pa.string(), pa.float64())),
        pa.field("redactions", pa.list_(REDACTION_TYPE)),
        pa.field("deid_confidence", pa.float32()),
        pa.field("exact_hash", pa.string()),
        pa.field("dedup_cluster", pa.string()),
        pa.field("dedup_cluster_size", pa.int32()),
        pa.field("review_status", pa.string(), nullable=False),
        pa.field("review_reasons", pa.list_(pa.string())),
        # Physician review outcome, attached by the publish after the review (null until then).
        pa.field("review_accuracy", pa.float32()),
        pa.field("review_specialty", pa.string()),
        pa.field("review_image_quality", pa.float32()),
        pa.field("run_id", pa.string()),
        pa.field("pipeline_version", pa.string()),
        pa.field("config_hash", pa.string()),
        pa.field("ingested_at", pa.timestamp("us", tz="UTC")),
    ],
    metadata={"medcurate.schema": "sample", "medcurate.schema_version": str(SCHEMA_VERSION)},
)

SAMPLE_FIELDS: tuple[str, ...] = tuple(SAMPLE_SCHEMA.names)
_REQUIRED = {f.name for f in SAMPLE_SCHEMA if not f.nullable}
_DEFAULTS: dict[str, Any] = {
    "metadata": {},
    "quality_signals": {},
    "redactions": [],
    "review_status": ReviewStatus.NOT_REQUIRED.value,
    "review_reasons": [],
}


def sample_id(source_uri: str, record: int | str = 0) -> str:
    """Stable id: the same source record gets the same id in every run, so reviews can follow it."""
    return hashlib.sha256(f"{source_uri}#{record}".encode()).hexdigest()[:32]


def new_sample(**fields: Any) -> dict[str, Any]:
    """A sample dict with every schema key present; unknown keys are a programming error."""
    unknown = set(fields) - set(SAMPLE_FIELDS)
    if unknown:
        raise KeyError(f"not sample fields: {sorted(unknown)}")
    missing = {name for name in _REQUIRED - set(fields) if name not in _DEFAULTS and name != "id"}
    if missing:
        raise KeyError(f"missing required sample fields: {sorted(missing)}")
    sample: dict[str, Any] = {name: None for name in SAMPLE_FIELDS}
    for name, default in _DEFAULTS.items():
        sample[name] = default.copy() if isinstance(default, dict | list) else default
    sample.update(fields)
    if sample["id"] is None:
        sample["id"] = sample_id(sample["source_uri"])
    if sample["ingested_at"] is None:
        sample["ingested_at"] = datetime.now(UTC)
    return sample


def samples_to_table(samples: Iterable[Mapping[str, Any]]) -> pa.Table:
    rows = list(samples)
    columns = {name: [row.get(name) for row in rows] for name in SAMPLE_FIELDS}
    return pa.Table.from_pydict(columns, schema=SAMPLE_SCHEMA)


def table_to_samples(table: pa.Table) -> list[dict[str, Any]]:
    """Inverse of `samples_to_table`: Arrow maps come back as lists of pairs, turned into dicts."""
    rows = table.to_pylist()
    for row in rows:
        for name in ("metadata", "quality_signals"):
            if row.get(name) is not None:
                row[name] = dict(row[name])
    return rows
