"""Dedup across the parts of multimodal documents: images repeated on many pages leave every page,
documents are exact duplicates only with the same text and the same images."""

from __future__ import annotations

import io

import apache_beam as beam
import numpy as np
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to
from PIL import Image

from medcurate.dedup.beam import DeduplicateSamples
from medcurate.dedup.config import DedupConfig
from medcurate.dedup.multimodal import REPEATED, DropRepeatedImages, drop_repeated_images, image_keys
from medcurate.pipelines.ingest.images import perceptual_hash
from medcurate.pipelines.stage import DROPS, SAMPLES
from medcurate.schemas.events import Drop
from medcurate.schemas.sample import interleave, interleaving_problems, new_sample

TEXT = "Asthma inhalers: a reliever for symptoms when they occur and a preventer taken every day."


def image_part(seed: int) -> tuple[bytes, dict]:
    pixels = np.random.default_rng(seed).integers(0, 255, (64, 96), dtype=np.uint8)
    image = Image.fromarray(pixels)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue(), {"format": "png", "width": 96, "height": 64, "phash": perceptual_hash(image)}


LOGO = image_part(0)


def document(key: str, text: str, *images: tuple[bytes, dict]) -> dict:
    fields = interleave([text, *images, "Ask your nurse for an action plan written for you."])
    return new_sample(id=key, source_kind="web", modality="multimodal", source_uri=f"mem://{key}", **fields)


def test_repeated_image_leaves_the_document_and_is_counted():
    sample = document("a", TEXT, LOGO, image_part(1))
    out = drop_repeated_images(sample, image_keys(document("x", TEXT, LOGO)))
    assert out["modality"] == "multimodal" and interleaving_problems(out) == []
    assert out["images"][1] == image_part(1)[0] and LOGO[0] not in out["images"]
    assert out["metadata"]["parts_dropped"] == f'{{"{REPEATED}": 1}}'
    assert out["text"] == sample["text"]


def test_document_left_without_images_is_text_or_dropped():
    sample = document("a", TEXT, LOGO)
    repeated = image_keys(sample)
    text = drop_repeated_images(sample, repeated, "text")
    assert text["modality"] == "text" and text["texts"] is None and text["text"] == sample["text"]
    dropped = drop_repeated_images(sample, repeated, "drop")
    assert isinstance(dropped, Drop) and dropped.reason == "no_images_left"


def test_logo_on_many_pages_is_left_out_of_all_of_them():
    pages = [document(f"p{i}", f"{TEXT} Page {i}.", LOGO, image_part(10 + i)) for i in range(12)]
    pages.append(document("only-logo", f"{TEXT} A page with nothing but the logo.", LOGO))
    with BeamTestPipeline() as pipeline:
        out = pipeline | beam.Create(pages) | DropRepeatedImages(max_repeats=10)
        assert_that(
            out[SAMPLES]
            | beam.Map(lambda s: (s["id"], s["modality"], len([i for i in s["images"] or [] if i]))),
            equal_to([(f"p{i}", "multimodal", 1) for i in range(12)] + [("only-logo", "text", 0)]),
        )
        assert_that(out[DROPS], equal_to([]), label="no drops")


def test_documents_are_exact_duplicates_only_with_the_same_images():
    samples = [
        document("a", TEXT, image_part(1)),
        document("b", TEXT, image_part(1)),  # same text, same image: a duplicate
        document("c", TEXT, image_part(2)),  # same text, another image: kept
        new_sample(
            id="d",
            source_kind="image",
            modality="multimodal",
            source_uri="mem://d",
            **interleave([image_part(3)]),
        ),
        new_sample(
            id="e",
            source_kind="image",
            modality="multimodal",
            source_uri="mem://e",
            **interleave([image_part(4)]),
        ),
    ]
    with BeamTestPipeline() as pipeline:
        out = pipeline | beam.Create(samples) | DeduplicateSamples(DedupConfig(threshold=0.7, ngram=3))
        assert_that(out[SAMPLES] | beam.Map(lambda s: s["id"]), equal_to(["a", "c", "d", "e"]))
        assert_that(
            out[DROPS] | beam.Map(lambda d: (d["sample_id"], d["reason"])),
            equal_to([("b", "exact_duplicate")]),
            label="drops",
        )
