"""The Beam stage end to end on the in-process runner: text and image samples, dead letters."""

from __future__ import annotations

import io
import json
import pickle
import uuid
from pathlib import Path

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from PIL import Image

from medcurate.pipelines.stage import DEAD_LETTERS, SAMPLES
from medcurate.privacy.beam import DeidentifySamples
from medcurate.privacy.config import DeidConfig
from medcurate.schemas.sample import new_sample, samples_to_table

CANARY = "Dr. Evangeline Fairweather saw him on 7/22; call 617-555-0199, MRN: 00482913."
CANARY_VALUES = ("Evangeline", "Fairweather", "7/22", "617-555-0199", "00482913")


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 200, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def _dump(element: dict, folder: Path) -> None:
    folder.mkdir(exist_ok=True)
    (folder / uuid.uuid4().hex).write_bytes(pickle.dumps(element))


def test_stage_deidentifies_samples_and_dead_letters_carry_no_phi(tmp_path: Path) -> None:
    samples = [
        new_sample(source_kind="clinical", modality="text", source_uri="mem://note/1", text=CANARY),
        new_sample(
            source_kind="web",
            modality="text",
            source_uri="mem://note/2",
            text="No PHI here.",
            # A page title or a configured note field is free text: de-identified like the text.
            metadata={
                "title": "Letter from Evangeline Fairweather, 617-555-0199",
                "content_type": "text/html",
            },
        ),
        new_sample(source_kind="image", modality="image", source_uri="mem://img/1", image_bytes=_png()),
        # Undecodable image bytes whose content is PHI: must dead-letter without it.
        new_sample(
            source_kind="image",
            modality="image",
            source_uri="mem://img/bad",
            image_bytes=CANARY.encode(),
        ),
    ]
    options = PipelineOptions([], runner="FnApiRunner")
    with beam.Pipeline(options=options) as pipeline:
        outputs = pipeline | beam.Create(samples) | DeidentifySamples(DeidConfig(batch_size=4))
        outputs[SAMPLES] | "KeepSamples" >> beam.Map(_dump, tmp_path / "samples")
        outputs[DEAD_LETTERS] | "KeepLetters" >> beam.Map(_dump, tmp_path / "letters")
    out_samples = [pickle.loads(p.read_bytes()) for p in (tmp_path / "samples").iterdir()]
    out_letters = [pickle.loads(p.read_bytes()) for p in (tmp_path / "letters").iterdir()]

    assert len(out_samples) == 3 and len(out_letters) == 1
    assert out_letters[0]["source_uri"] == "mem://img/bad"
    assert out_letters[0]["stage"] == "deid"
    everything = json.dumps(out_letters) + repr(samples_to_table(out_samples).to_pylist())
    for value in CANARY_VALUES:
        assert value not in everything
    note = next(s for s in out_samples if s["source_uri"] == "mem://note/1")
    assert note["redactions"] and 0 < note["deid_confidence"] <= 1
    for redaction in note["redactions"]:
        assert note["text"][redaction["start"] : redaction["end"]] == f"<{redaction['type']}>"
    page = next(s for s in out_samples if s["source_uri"] == "mem://note/2")
    assert page["text"] == "No PHI here." and page["deid_confidence"] == 1.0
    assert page["metadata"]["content_type"] == "text/html"
    assert page["metadata"]["title"].startswith("Letter from <")
    image = next(s for s in out_samples if s["source_uri"] == "mem://img/1")
    assert image["metadata"]["deid.ocr"] == "checked"
    assert image["review_status"] == "not_required"
