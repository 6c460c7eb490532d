"""Deduplication across the parts of multimodal documents.

- A document's exact hash covers its text and its images (`document_hash`), and its near-duplicate
  bands its set of images (`image_set_key`): two pages with the same text and different figures
  are not duplicates; a multimodal document without text is only ever an exact duplicate.
- An image found in more than `max_image_repeats` documents (the same logo, banner or icon on
  every page of a site) is left out of all of them, as OBELICS does; it is recognised by its
  perceptual hash, so re-encodings of it count as the same image. Inside one document, repeats
  are already left out at ingest.
- A document that loses all its images this way becomes a text sample, or is dropped with the
  reason `no_images_left` (`ingest.multimodal.no_images_left`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam

from medcurate.pipelines.stage import DROPS, SAMPLES, count, emit_event
from medcurate.schemas.events import Drop
from medcurate.schemas.sample import Modality, interleave, parts_of

STAGE = "dedup"
REPEATED = "image_repeated_across_documents"


def document_hash(text_hash: str, sample: dict[str, Any]) -> str:
    """The exact hash of a document: its text's exact hash and the bytes of its images, in order."""
    digest = hashlib.blake2b(text_hash.encode(), digest_size=16)
    for image in sample.get("images") or []:
        if image is not None:
            digest.update(hashlib.sha256(image).digest())
    return digest.hexdigest()


def image_keys(sample: dict[str, Any]) -> set[str]:
    """The perceptual hashes of a document's images, each once."""
    return {
        f"{meta['phash']:016x}"
        for meta in sample.get("image_meta") or []
        if meta and meta.get("phash") is not None
    }


def image_set_key(sample: dict[str, Any]) -> bytes:
    """A short key of a document's set of images (by perceptual hash); empty for a text sample."""
    keys = image_keys(sample)
    return hashlib.blake2b("|".join(sorted(keys)).encode(), digest_size=8).digest() if keys else b""


def drop_repeated_images(
    sample: dict[str, Any], repeated: set[str] | frozenset[str], no_images_left: str = "text"
) -> dict[str, Any] | Drop:
    """The document without the images in `repeated`; a text sample or a Drop when none is left."""
    if sample.get("modality") != Modality.MULTIMODAL or not repeated & image_keys(sample):
        return sample
    kept = []
    removed = 0
    for part in parts_of(sample):
        if not isinstance(part, str) and f"{part[1].get('phash'):016x}" in repeated:
            removed += 1
            continue
        kept.append(part)
    count(f"parts_dropped:{STAGE}/{REPEATED}", removed)
    metadata = dict(sample.get("metadata") or {})
    dropped = json.loads(metadata.get("parts_dropped") or "{}")
    dropped[REPEATED] = dropped.get(REPEATED, 0) + removed
    metadata["parts_dropped"] = json.dumps(dict(sorted(dropped.items())))
    fields = interleave(kept)
    images = sum(1 for part in kept if not isinstance(part, str))
    if images:
        metadata["images"] = str(images)
        return {**sample, **fields, "metadata": metadata}
    if no_images_left == "drop" or not fields["text"]:
        return Drop(STAGE, "no_images_left", sample["source_uri"], sample["id"])
    metadata.pop("images", None)
    # The joined text is unchanged (images only left), so redaction offsets still hold.
    return {
        **sample,
        "modality": Modality.TEXT.value,
        "mime_type": "text/plain",
        "texts": None,
        "images": None,
        "image_meta": None,
        "metadata": metadata,
    }


class _DropRepeatedFn(beam.DoFn):
    def __init__(self, no_images_left: str) -> None:
        self.no_images_left = no_images_left

    def process(self, sample: dict[str, Any], repeated: Iterable[str]) -> Iterator[Any]:
        result = drop_repeated_images(sample, frozenset(repeated), self.no_images_left)
        yield emit_event(result) if isinstance(result, Drop) else result


class DropRepeatedImages(beam.PTransform):
    """Samples in; SAMPLES out without the images repeated across more than `max_repeats`
    documents, DROPS for documents left with nothing. Only image hashes cross a shuffle."""

    def __init__(self, max_repeats: int, no_images_left: str = "text") -> None:
        super().__init__()
        self.max_repeats = max_repeats
        self.no_images_left = no_images_left

    def expand(self, samples):
        repeated = (
            samples
            | "ImageKeys" >> beam.FlatMap(lambda sample: [(key, 1) for key in image_keys(sample)])
            | "CountDocuments" >> beam.CombinePerKey(sum)
            | "Repeated" >> beam.Filter(lambda item, limit: item[1] > limit, self.max_repeats)
            | "Keys" >> beam.Keys()
        )
        return samples | "DropRepeated" >> beam.ParDo(
            _DropRepeatedFn(self.no_images_left), beam.pvalue.AsList(repeated)
        ).with_outputs(DROPS, main=SAMPLES)
