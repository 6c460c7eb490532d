"""De-identification of a multimodal document, part by part: every text part and every image caption
through text de-identification, every image through the image path (re-encoded from pixels,
burned-in text found by OCR and painted over), with the same patient scope, so that a name in a
caption and the same name burned into the image are both removed.

The joined `text` is rebuilt from the de-identified parts, and each part's redaction offsets are
moved to where the part sits in it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from medcurate.privacy.config import DeidConfig
from medcurate.privacy.images import load_pixels, scrub_image_sample
from medcurate.schemas.sample import PART_SEPARATOR

if TYPE_CHECKING:
    from medcurate.privacy.text import DeidResult, TextDeidentifier

UNCHECKED = "deid:burned_in_text_unchecked"


def text_jobs(sample: dict[str, Any]) -> list[tuple[str, int, str]]:
    """(kind, position, text) of every text the document holds: parts, then image captions."""
    jobs = [("part", i, text) for i, text in enumerate(sample.get("texts") or []) if text]
    jobs += [
        ("caption", i, meta["caption"])
        for i, meta in enumerate(sample.get("image_meta") or [])
        if meta and meta.get("caption")
    ]
    return jobs


def apply_results(
    sample: dict[str, Any],
    results: dict[tuple[str, int], DeidResult],
    deidentifier: TextDeidentifier | None,
    config: DeidConfig,
) -> dict[str, Any]:
    """A copy of the document with de-identified parts, captions and images."""
    out = dict(sample)
    texts = list(sample.get("texts") or [])
    meta = [dict(m) if m else m for m in sample.get("image_meta") or []]
    images = list(sample.get("images") or [])
    redactions: list[dict[str, Any]] = []
    confidences: list[float] = []
    cursor = 0
    joined: list[str] = []
    for position, text in enumerate(texts):
        if text is None:
            continue
        result = results.get(("part", position))
        if result is not None:
            texts[position] = result.text
            confidences.append(result.confidence)
            redactions += [
                {**r, "start": r["start"] + cursor, "end": r["end"] + cursor} for r in result.redactions
            ]
        joined.append(texts[position])
        cursor += len(texts[position]) + len(PART_SEPARATOR)
    for (kind, position), result in results.items():
        if kind == "caption" and meta[position]:
            meta[position]["caption"] = result.text
    reasons = list(sample.get("review_reasons") or [])
    metadata = dict(sample.get("metadata") or {})
    boxes: dict[str, Any] = {}
    ocr: set[str] = set()
    for position, data in enumerate(images):
        if data is None:
            continue
        scrubbed = scrub_image_sample(
            {"image_bytes": data, "image_format": (meta[position] or {}).get("format"), "metadata": {}},
            deidentifier,
            config,
        )
        images[position] = scrubbed["image_bytes"]
        part_metadata = scrubbed["metadata"]
        ocr.add(part_metadata.get("deid.ocr", "not_run"))
        if part_metadata.get("deid.boxes"):
            boxes[str(position)] = json.loads(part_metadata["deid.boxes"])
        if UNCHECKED in (scrubbed.get("review_reasons") or []) and UNCHECKED not in reasons:
            reasons.append(UNCHECKED)
        if meta[position] is not None:
            meta[position].update(
                format=scrubbed["image_format"],
                width=scrubbed["image_width"],
                height=scrubbed["image_height"],
                bytes=len(scrubbed["image_bytes"]),
                phash=_phash(scrubbed["image_bytes"])
                if boxes.get(str(position))
                else meta[position]["phash"],
            )
    if ocr:
        metadata["deid.ocr"] = ",".join(sorted(ocr))
    if boxes:
        metadata["deid.boxes"] = json.dumps(boxes)
    out.update(
        texts=texts or sample.get("texts"),
        images=images or sample.get("images"),
        image_meta=meta or sample.get("image_meta"),
        text=PART_SEPARATOR.join(joined) or None,
        redactions=redactions,
        metadata=metadata,
        deid_confidence=0.0 if UNCHECKED in reasons else min(confidences, default=1.0),
    )
    if reasons != list(sample.get("review_reasons") or []):
        out["review_reasons"] = reasons
        out["review_status"] = "pending"
    return out


def _phash(data: bytes) -> int:
    from medcurate.pipelines.ingest.images import perceptual_hash

    return perceptual_hash(load_pixels(data))
