"""Beam adapter of the de-identification stage; the work itself is in `text` and `images`."""

from __future__ import annotations

from typing import Any

import apache_beam as beam

from medcurate.pipelines.stage import DEAD_LETTERS, DROPS, SAMPLES, SampleStageFn
from medcurate.privacy.config import DeidConfig
from medcurate.privacy.images import scrub_image_sample


def patient_scope(sample: dict[str, Any]) -> str:
    """Surrogates and date shifts stay consistent per patient where ingest knows the patient."""
    metadata = sample.get("metadata") or {}
    return metadata.get("patient_id") or sample["id"]


class DeidentifyFn(SampleStageFn):
    stage = "deid"
    failure_reason = "deid_error"

    def __init__(self, config: DeidConfig) -> None:
        self.config = config

    def setup(self) -> None:
        from medcurate.privacy.text import TextDeidentifier

        super().setup()
        self.deidentifier = TextDeidentifier(self.config)

    def process_samples(self, samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
        texts = [s for s in samples if s.get("text")]
        results = self.deidentifier.deidentify_batch(
            [s["text"] for s in texts], [patient_scope(s) for s in texts]
        )
        by_id = {id(sample): result for sample, result in zip(texts, results, strict=True)}
        out = []
        for sample in samples:
            result = by_id.get(id(sample))
            if sample.get("image_bytes") is not None:
                sample = scrub_image_sample(sample, self.deidentifier, self.config)
            if result is not None:
                sample = {
                    **sample,
                    "text": result.text,
                    "redactions": result.redactions,
                    "deid_confidence": result.confidence,
                }
            elif sample.get("deid_confidence") is None:
                sample = {**sample, "deid_confidence": 1.0}
            out.append(sample)
        return out


class DeidentifySamples(beam.PTransform):
    """Samples in, de-identified samples out (`SAMPLES`), failures as `DEAD_LETTERS` without content."""

    def __init__(self, config: DeidConfig | None = None) -> None:
        super().__init__()
        self.config = config or DeidConfig()

    def expand(self, samples):
        return (
            samples
            | "BatchForDeid" >> beam.BatchElements(min_batch_size=1, max_batch_size=self.config.batch_size)
            | "Deidentify"
            >> beam.ParDo(DeidentifyFn(self.config)).with_outputs(DEAD_LETTERS, DROPS, main=SAMPLES)
        )
