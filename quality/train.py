"""`medcurate quality train` and `bootstrap`: fit the heads, measure them on held-out sources, save them.

Labels from physicians' verdicts (the warehouse's `verdicts.parquet` joined to published text):
- quality: accepted (and accuracy rated 3 or more when rated) = 1, rejected = 0;
- relevance: a specialty chosen = 1, rejected with no specialty = 0; the public health / not-health
  texts are added when available so a handful of verdicts does not erase what the bootstrap knew.
Verdicts still in adjudication or incomplete teach nothing and are left out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.parquet as pq

from medcurate.quality.models import (
    Example,
    evaluate,
    positive_probability,
    sha256_file,
    split_by_group,
    train_fasttext,
    write_artifact,
)

TEST_SHARE = 0.25
MIN_PER_CLASS = 2
QUANTIZE_CUTOFF = 50_000
ACCURACY_FLOOR = 3  # an accepted sample rated below this (1-5 scale) still counts as poor quality


class TrainingError(ValueError):
    """Too few or one-sided labels to fit or measure a head."""


def source_group(source_uri: str) -> str:
    """The source a sample came from: a web host, else the file (a note's records share its file)."""
    parts = urlsplit(source_uri)
    if parts.scheme in ("http", "https") and parts.netloc:
        return parts.netloc.lower()
    return source_uri.split("#", 1)[0]


def verdict_examples(verdicts: list[dict[str, Any]], texts: dict[str, tuple[str, str]]) -> dict[str, list]:
    """Examples per head from verdict rows and {sample_id: (text, source_uri)}."""
    heads: dict[str, list[Example]] = {"quality": [], "relevance": []}
    for row in verdicts:
        found = texts.get(row["sample_id"])
        if found is None or row["decision"] not in ("accepted", "rejected"):
            continue
        text, uri = found
        group = source_group(uri)
        accuracy = row.get("accuracy")
        accepted = row["decision"] == "accepted" and (accuracy is None or accuracy >= ACCURACY_FLOOR)
        heads["quality"].append(Example(text, int(accepted), group))
        if row.get("specialty"):
            heads["relevance"].append(Example(text, 1, group))
        elif row["decision"] == "rejected":
            heads["relevance"].append(Example(text, 0, group))
    return heads


def fit_head(
    head: str, examples: list[Example], models_dir: Path, trained_on: dict[str, Any], snapshot_ids=None
) -> Path:
    """Train on sources outside the held-out share, measure on it, retrain on everything, save."""
    train, test = split_by_group(examples, TEST_SHARE)
    for name, part in (("training", train), ("held-out", test)):
        counts = [sum(e.label == c for e in part) for c in (0, 1)]
        if min(counts) < MIN_PER_CLASS:
            raise TrainingError(
                f"{head}: the {name} split has {counts[0]} negative and {counts[1]} positive examples "
                f"(need {MIN_PER_CLASS} of each; more verdicts from more sources)"
            )
    held_out_model = train_fasttext(train)
    metrics = {
        "test": evaluate(
            [e.label for e in test], positive_probability(held_out_model, [e.text for e in test])
        ),
        "train_examples": len(train),
        "test_examples": len(test),
        "split": f"by source, {TEST_SHARE:.0%} of sources held out",
    }
    final = train_fasttext(examples)
    final.quantize(input=None, qnorm=True, retrain=False, cutoff=QUANTIZE_CUTOFF)
    folder = write_artifact(final, models_dir, head, metrics, trained_on)
    if snapshot_ids is not None:
        pq.write_table(snapshot_ids, folder / "snapshot.parquet")
    return folder


def published_texts(output_dir: str, dataset: str) -> dict[str, tuple[str, str]]:
    """{sample id: (text, source uri)} over every published version of a dataset (newest wins)."""
    from medcurate.warehouse import storage
    from medcurate.warehouse.catalog import Catalog, catalog_path, read_parquet_sql

    path = catalog_path(output_dir)
    if not storage.exists(path):
        return {}
    texts: dict[str, tuple[str, str]] = {}
    with Catalog(path, read_only=True) as catalog:
        for version in catalog.versions(dataset):
            shards = catalog.shard_paths(dataset, version["version"])
            if not shards:
                continue
            rows = catalog.connection.execute(
                f"SELECT id, text, source_uri FROM {read_parquet_sql(shards)} "
                "WHERE modality = 'text' AND text IS NOT NULL"
            ).fetchall()
            texts.update({row[0]: (row[1], row[2]) for row in rows})
    return texts


def train_from_verdicts(
    verdicts_path: Path,
    texts: dict[str, tuple[str, str]],
    models_dir: Path,
    public: list[Example] | None = None,
) -> dict[str, Path]:
    """Both heads from the physicians' verdicts; returns the artifact folder per head."""
    verdicts = pq.read_table(verdicts_path).to_pylist()
    heads = verdict_examples(verdicts, texts)
    snapshot = {
        "verdicts_sha256": sha256_file(verdicts_path),
        "verdicts": len(verdicts),
        "public_examples": len(public or []),
    }
    out = {}
    for head, examples in heads.items():
        extra = list(public or []) if head == "relevance" else []
        ids = pa.table(
            {
                "sample_id": [r["sample_id"] for r in verdicts if r["sample_id"] in texts],
                "decision": [r["decision"] for r in verdicts if r["sample_id"] in texts],
            }
        )
        out[head] = fit_head(
            head,
            examples + extra,
            models_dir,
            {**snapshot, "verdict_examples": len(examples), "source": "physician verdicts"},
            ids,
        )
    return out


def train_bootstrap(data: Path, models_dir: Path) -> Path:
    """The relevance head from public labelled data only (what a fresh install ships)."""
    from medcurate.quality.public_data import relevance_examples

    examples = relevance_examples(data)
    return fit_head(
        "relevance",
        examples,
        models_dir,
        {
            "source": "public labelled data (bootstrap)",
            "datasets": [
                "medquad",
                "medical_question_pairs",
                "asq_phi",
                "article_extraction",
                "presidio_research_synth",
            ],
            "examples": len(examples),
            "positives": sum(e.label for e in examples),
        },
    )
