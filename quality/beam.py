"""Beam adapter for the signals stage: language ID, standard text filters and model scores over batches."""

from __future__ import annotations

from typing import Any

import apache_beam as beam

from medcurate.pipelines.stage import DEAD_LETTERS, DROPS, SAMPLES, SampleStageFn
from medcurate.quality.config import QualityConfig
from medcurate.quality.filters import filter_reason, filter_statistics
from medcurate.quality.heuristics import drop_reason, text_signals
from medcurate.schemas.events import Drop, Event
from medcurate.schemas.sample import Modality
from medcurate.stages.base import shared_model


def _has_text_parts(sample: dict[str, Any]) -> bool:
    return sample["modality"] == Modality.MULTIMODAL and bool(sample.get("text"))


class _SignalsFn(SampleStageFn):
    stage = "quality"

    def __init__(self, config: QualityConfig, relevance_dir: str | None, quality_dir: str | None) -> None:
        self.config = config
        self.relevance_dir = relevance_dir
        self.quality_dir = quality_dir

    def setup(self) -> None:
        super().setup()
        self.identifier, self.scorer  # loaded here, once per worker process  # noqa: B018

    # Looked up in the process's shared models at each use, never kept by the DoFn: the passes
    # after the per-sample stages release them (`release_shared_models`).
    @property
    def identifier(self):
        from medcurate.quality.langid import LanguageIdentifier

        return shared_model("langid", "", LanguageIdentifier)

    @property
    def scorer(self):
        from medcurate.quality.models import TextScorer

        relevance, quality = self.relevance_dir, self.quality_dir or self.relevance_dir
        if not relevance:
            return None
        return shared_model("scorer", f"{relevance}|{quality}", lambda: TextScorer(relevance, quality))

    def process_samples(self, samples: list[dict[str, Any]]) -> list[dict[str, Any] | Event]:
        # A multimodal document's text parts get signals too; its images keep it whatever they say.
        texts = [s for s in samples if s["modality"] == Modality.TEXT or _has_text_parts(s)]
        predictions = self.identifier.predict([s["text"] for s in texts])
        results: list[dict[str, Any] | Event] = [s for s in samples if not any(s is t for t in texts)]
        kept = []
        for sample, (language, score) in zip(texts, predictions, strict=True):
            signals = text_signals(sample["text"])
            reason = drop_reason(signals, language, score, self.config)
            is_text = sample["modality"] == Modality.TEXT
            if not reason and is_text:
                filters = self.config.filters_for(sample["source_kind"])
                signals |= filter_statistics(sample["text"], filters)
                reason = filter_reason(signals, filters)
            if reason and is_text:
                results.append(Drop(self.stage, reason, sample["source_uri"], sample["id"]))
                continue
            kept.append({**sample, "language": language, "language_score": score, "quality_signals": signals})
        scores = self.scorer.score([s["text"] for s in kept]) if self.scorer else [(None, None)] * len(kept)
        for sample, (relevance, quality) in zip(kept, scores, strict=True):
            results.append({**sample, "relevance_score": relevance, "quality_score": quality})
        return results


class ComputeSignals(beam.PTransform):
    """Sets language, filter statistics and model scores; drops texts a filter rejects (reason per rule)."""

    def __init__(
        self, config: QualityConfig, relevance_dir: str | None = None, quality_dir: str | None = None
    ) -> None:
        super().__init__()
        self.config = config
        self.relevance_dir = relevance_dir
        self.quality_dir = quality_dir

    def expand(self, samples):
        return (
            samples
            | "Batch" >> beam.BatchElements(min_batch_size=16, max_batch_size=256)
            | "Signals"
            >> beam.ParDo(_SignalsFn(self.config, self.relevance_dir, self.quality_dir)).with_outputs(
                DEAD_LETTERS, DROPS, main=SAMPLES
            )
        )
