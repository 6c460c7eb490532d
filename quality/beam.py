"""Beam adapter for the signals stage: language ID and quality heuristics over batches of samples."""

from __future__ import annotations

from typing import Any

import apache_beam as beam

from medcurate.pipelines.stage import DEAD_LETTERS, DROPS, SAMPLES, SampleStageFn
from medcurate.quality.config import QualityConfig
from medcurate.quality.heuristics import drop_reason, text_signals
from medcurate.schemas.events import Drop, Event
from medcurate.schemas.sample import Modality


def _has_text_parts(sample: dict[str, Any]) -> bool:
    return sample["modality"] == Modality.MULTIMODAL and bool(sample.get("text"))


class _SignalsFn(SampleStageFn):
    stage = "quality"

    def __init__(self, config: QualityConfig) -> None:
        self.config = config

    def setup(self) -> None:
        super().setup()
        from medcurate.quality.langid import LanguageIdentifier

        self.identifier = LanguageIdentifier()

    def process_samples(self, samples: list[dict[str, Any]]) -> list[dict[str, Any] | Event]:
        # A multimodal document's text parts get signals too; its images keep it whatever they say.
        texts = [s for s in samples if s["modality"] == Modality.TEXT or _has_text_parts(s)]
        predictions = self.identifier.predict([s["text"] for s in texts])
        results: list[dict[str, Any] | Event] = [s for s in samples if not any(s is t for t in texts)]
        for sample, (language, score) in zip(texts, predictions, strict=True):
            signals = text_signals(sample["text"])
            reason = drop_reason(signals, language, score, self.config)
            if reason and sample["modality"] == Modality.TEXT:
                results.append(Drop(self.stage, reason, sample["source_uri"], sample["id"]))
                continue
            results.append(
                {**sample, "language": language, "language_score": score, "quality_signals": signals}
            )
        return results


class ComputeSignals(beam.PTransform):
    """Sets language and quality signals; drops texts too short or in a language not wanted."""

    def __init__(self, config: QualityConfig) -> None:
        super().__init__()
        self.config = config

    def expand(self, samples):
        return (
            samples
            | "Batch" >> beam.BatchElements(min_batch_size=16, max_batch_size=256)
            | "Signals" >> beam.ParDo(_SignalsFn(self.config)).with_outputs(DEAD_LETTERS, DROPS, main=SAMPLES)
        )
