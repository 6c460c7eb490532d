"""Apply physician verdicts to the next dataset version: exclude, annotate, redact what survived."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from medcurate.privacy.images import encode_clean, load_pixels, paint_boxes
from medcurate.schemas.events import Drop
from medcurate.schemas.sample import ReviewStatus
from medcurate.warehouse import storage

# Where `medcurate review pull` writes the settled verdicts (defined here, not in `pull`, so that
# the pipeline reads them without importing the Label Studio client).
VERDICTS_FILE = "verdicts.parquet"

STAGE = "review"
REJECTED = "rejected_by_reviewer"


@dataclass(frozen=True)
class Verdict:
    sample_id: str
    decision: str  # accepted | rejected | adjudicate | incomplete
    accuracy: float | None = None
    specialty: str | None = None
    image_quality: float | None = None
    phi_spans: list[dict[str, Any]] = field(default_factory=list)
    phi_boxes: list[dict[str, Any]] = field(default_factory=list)


def _read_rows(path: str) -> list[dict[str, Any]]:
    with storage.open_read(path) as handle:
        return pq.read_table(handle).to_pylist()


def load_verdicts(reviews_dir: str | Path) -> dict[str, Verdict]:
    """Verdicts written by `pull_reviews`, by sample id; empty when nothing was pulled yet."""
    path = storage.join(str(reviews_dir), VERDICTS_FILE)  # pathlib would mangle gs://
    if not storage.exists(path):
        return {}
    return {
        row["sample_id"]: Verdict(
            sample_id=row["sample_id"],
            decision=row["decision"],
            accuracy=row["accuracy"],
            specialty=row["specialty"],
            image_quality=row["image_quality"],
            phi_spans=row["phi_spans"] or [],
            phi_boxes=row["phi_boxes"] or [],
        )
        for row in _read_rows(path)
    }


def redact_spans(
    text: str, redactions: list[dict[str, Any]], spans: list[dict[str, Any]]
) -> tuple[str, list[dict[str, Any]]]:
    """Replace reviewer-flagged spans by `<TYPE>` and shift the existing redaction offsets to match.

    Spans overlapping an existing redaction or each other are already covered and are skipped.
    """
    taken = [(r["start"], r["end"]) for r in redactions]
    new = []
    for span in sorted(spans, key=lambda s: (s["start"], s["end"])):
        start, end = max(0, span["start"]), min(len(text), span["end"])
        if start < end and all(end <= a or start >= b for a, b in taken):
            taken.append((start, end))
            new.append({"start": start, "end": end, "type": span["type"], "score": None, "reviewer": True})
    if not new:
        return text, redactions
    pieces, out, cursor, shift = [], [], 0, 0
    for item in sorted([*redactions, *new], key=lambda r: r["start"]):
        pieces.append(text[cursor : item["start"]])
        replacement = f"<{item['type']}>" if item.get("reviewer") else text[item["start"] : item["end"]]
        start = item["start"] + shift
        pieces.append(replacement)
        shift += len(replacement) - (item["end"] - item["start"])
        cursor = item["end"]
        out.append(
            {"start": start, "end": start + len(replacement), "type": item["type"], "score": item["score"]}
        )
    pieces.append(text[cursor:])
    return "".join(pieces), out


def black_out_boxes(
    image_bytes: bytes, image_format: str | None, boxes: list[dict[str, Any]]
) -> tuple[bytes, str]:
    """Paint reviewer-flagged boxes (percent coordinates) black, every partly covered pixel included,
    and re-encode from pixels as de-id does; returns (bytes, format)."""
    image = load_pixels(image_bytes)
    width, height = image.size
    pixel_boxes = [
        (
            math.floor(box["x"] * width / 100),
            math.floor(box["y"] * height / 100),
            math.ceil((box["x"] + box["width"]) * width / 100),
            math.ceil((box["y"] + box["height"]) * height / 100),
        )
        for box in boxes
    ]
    data, fmt = encode_clean(paint_boxes(image, pixel_boxes, margin=0), image_format)
    return data, fmt.lower()


def is_settled(verdict: Verdict | None) -> bool:
    """Whether physicians settled the sample (accepted or rejected): it is then never routed again."""
    return verdict is not None and verdict.decision in (ReviewStatus.ACCEPTED, ReviewStatus.REJECTED)


def apply_verdict(sample: dict[str, Any], verdict: Verdict | None) -> dict[str, Any] | Drop:
    """The sample as the next version publishes it, or a Drop when physicians rejected it.

    Without a settled verdict (none yet, reviewers disagree, too few reviews) the sample is unchanged.
    """
    if verdict is None or not is_settled(verdict):
        return sample
    if verdict.decision == ReviewStatus.REJECTED:
        return Drop(stage=STAGE, reason=REJECTED, source_uri=sample["source_uri"], sample_id=sample["id"])
    applied = dict(sample)
    applied["review_status"] = ReviewStatus.ACCEPTED.value
    applied["review_accuracy"] = verdict.accuracy
    applied["review_specialty"] = verdict.specialty
    applied["review_image_quality"] = verdict.image_quality
    if verdict.phi_spans and sample.get("text"):
        applied["text"], applied["redactions"] = redact_spans(
            sample["text"], list(sample.get("redactions") or []), verdict.phi_spans
        )
    if verdict.phi_boxes and sample.get("image_bytes"):
        applied["image_bytes"], applied["image_format"] = black_out_boxes(
            sample["image_bytes"], sample.get("image_format"), verdict.phi_boxes
        )
    return applied
