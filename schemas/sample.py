"""The one Arrow schema of a curated sample, and helpers to build records that fit it.

Inside Beam a sample travels as a plain dict whose keys are exactly the schema's field names;
`new_sample` fills the defaults so every stage can rely on every key being present.

Version 2 adds multimodal documents in the OBELICS layout: parallel lists `texts` and `images`
of equal length, each position holding exactly one of the two, with `image_meta` (format, size,
perceptual hash, source reference, caption or alt text, license) beside every image position. A
text sample (`text`) and an image sample (`image_bytes`) stay what they were. Version 2 also
stores the string maps (`metadata`, `quality_signals`) as lists of key/value structs, which
Hugging Face `datasets` reads (it has no type for Arrow maps); in Python they stay dicts.
`upgrade_table` reads version-1 shards into the version-2 schema.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import pyarrow as pa

SCHEMA_VERSION = 2


class SourceKind(StrEnum):
    WEB = "web"
    IMAGE = "image"
    CLINICAL = "clinical"
    ARTICLE = "article"


class Modality(StrEnum):
    TEXT = "text"
    IMAGE = "image"
    MULTIMODAL = "multimodal"


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

# One image position of a multimodal sample: what a trainer needs without decoding the bytes.
IMAGE_META_TYPE = pa.struct(
    [
        pa.field("format", pa.string()),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("bytes", pa.int64()),
        pa.field("phash", pa.uint64()),
        pa.field("source_ref", pa.string()),
        pa.field("caption", pa.string()),
        pa.field("license", pa.string()),
    ]
)
STRING_PAIRS = pa.list_(
    pa.struct([pa.field("key", pa.string(), nullable=False), pa.field("value", pa.string())])
)
FLOAT_PAIRS = pa.list_(
    pa.struct([pa.field("key", pa.string(), nullable=False), pa.field("value", pa.float64())])
)
_PAIR_FIELDS = ("metadata", "quality_signals")

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
        pa.field("texts", pa.list_(pa.string())),
        pa.field("images", pa.list_(pa.binary())),
        pa.field("image_meta", pa.list_(IMAGE_META_TYPE)),
        pa.field("metadata", STRING_PAIRS),
        pa.field("language", pa.string()),
        pa.field("language_score", pa.float32()),
        pa.field("quality_score", pa.float32()),
        # P(health/medical content) from the relevance model (quality_score: P(a physician accepts)).
        pa.field("relevance_score", pa.float32()),
        pa.field("quality_signals", FLOAT_PAIRS),
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


def to_arrow_row(sample: Mapping[str, Any]) -> dict[str, Any]:
    """The sample as the Parquet writer wants it: dict fields as sorted key/value lists."""
    row = dict(sample)
    for name in _PAIR_FIELDS:
        value = row.get(name)
        if isinstance(value, Mapping):
            row[name] = [{"key": key, "value": value[key]} for key in sorted(value)]
    return row


def from_arrow_row(row: dict[str, Any]) -> dict[str, Any]:
    """Inverse of `to_arrow_row`; also takes version-1 maps (lists of pairs) and fills new fields."""
    for name in _PAIR_FIELDS:
        value = row.get(name)
        if value is not None and not isinstance(value, dict):
            row[name] = dict((p["key"], p["value"]) if isinstance(p, dict) else p for p in value)
    for name in SAMPLE_FIELDS:
        row.setdefault(name, None)
    return row


def samples_to_table(samples: Iterable[Mapping[str, Any]]) -> pa.Table:
    rows = [to_arrow_row(sample) for sample in samples]
    columns = {name: [row.get(name) for row in rows] for name in SAMPLE_FIELDS}
    return pa.Table.from_pydict(columns, schema=SAMPLE_SCHEMA)


def table_to_samples(table: pa.Table) -> list[dict[str, Any]]:
    """Inverse of `samples_to_table`, for shards of either schema version."""
    return [from_arrow_row(row) for row in table.to_pylist()]


def schema_version_of(schema: pa.Schema) -> int:
    """The sample schema version a table or shard was written with (1 when unmarked)."""
    version = (schema.metadata or {}).get(b"medcurate.schema_version", b"1")
    return int(version)


def upgrade_table(table: pa.Table) -> pa.Table:
    """A sample table of any earlier version in the current schema: maps become key/value lists,
    the multimodal columns are added empty (a version-1 sample is a text or an image sample)."""
    if schema_version_of(table.schema) == SCHEMA_VERSION and table.schema.equals(SAMPLE_SCHEMA):
        return table
    columns = []
    for field in SAMPLE_SCHEMA:
        if field.name not in table.column_names:
            columns.append(pa.nulls(table.num_rows, field.type))
            continue
        column = table.column(field.name)
        if pa.types.is_map(column.type):
            pairs = [
                None if value is None else [{"key": k, "value": v} for k, v in value]
                for value in column.to_pylist()
            ]
            column = pa.array(pairs, type=field.type)
        columns.append(column.cast(field.type) if column.type != field.type else column)
    return pa.Table.from_arrays(columns, schema=SAMPLE_SCHEMA)


# A part of a multimodal document: text, or encoded image bytes with their `IMAGE_META_TYPE` fields.
Part = str | tuple[bytes, dict[str, Any]]
PART_SEPARATOR = "\n\n"


def interleave(parts: Iterable[Part]) -> dict[str, Any]:
    """The sample fields of a multimodal document: `texts`, `images` and `image_meta` in part
    order, and `text`, its text parts joined, which language ID, quality signals, text dedup and
    redaction offsets work on."""
    texts: list[str | None] = []
    images: list[bytes | None] = []
    meta: list[dict[str, Any] | None] = []
    for part in parts:
        if isinstance(part, str):
            texts.append(part)
            images.append(None)
            meta.append(None)
        else:
            texts.append(None)
            images.append(part[0])
            meta.append(part[1])
    joined = PART_SEPARATOR.join(t for t in texts if t is not None)
    return {"texts": texts, "images": images, "image_meta": meta, "text": joined or None}


def parts_of(sample: Mapping[str, Any]) -> list[Part]:
    """Inverse of `interleave`."""
    meta = sample.get("image_meta") or [None] * len(sample.get("images") or [])
    return [
        text if image is None else (image, dict(info or {}))
        for text, image, info in zip(sample.get("texts") or [], sample.get("images") or [], meta, strict=True)
    ]


def interleaving_problems(sample: Mapping[str, Any]) -> list[str]:
    """How a sample breaks the OBELICS convention (empty when it keeps it, or has no lists)."""
    texts, images, meta = sample.get("texts"), sample.get("images"), sample.get("image_meta")
    if texts is None and images is None:
        return [] if sample.get("modality") != Modality.MULTIMODAL else ["multimodal_without_lists"]
    if texts is None or images is None or len(texts) != len(images):
        return ["unequal_lengths"]
    problems = []
    if meta is not None and len(meta) != len(images):
        problems.append("image_meta_length")
    for position, (text, image) in enumerate(zip(texts, images, strict=True)):
        if (text is None) == (image is None):
            problems.append(f"position_{position}_not_exactly_one")
    if not texts:
        problems.append("empty_document")
    return problems
