"""Beam adapter of the de-identification stage; the work itself is in `text` and `images`."""

from __future__ import annotations

from typing import Any

import apache_beam as beam

from medcurate.pipelines.stage import DEAD_LETTERS, DROPS, SAMPLES, SampleStageFn
from medcurate.privacy import multimodal
from medcurate.privacy.config import DeidConfig
from medcurate.privacy.images import scrub_image_sample
from medcurate.stages.base import shared_model


def free_text_metadata(sample: dict[str, Any], structured: frozenset[str]) -> list[str]:
    """Metadata keys whose values may hold PHI: anything ingest did not produce as a structured field."""
    metadata = sample.get("metadata") or {}
    return [key for key, value in metadata.items() if value and key not in structured]


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
        super().setup()
        self.deidentifier  # loaded here, once per worker process  # noqa: B018
        self.structured = frozenset(self.config.structured_metadata)

    @property
    def deidentifier(self):
        """Looked up in the process's shared models at each use, never kept by the DoFn: the passes
        after the per-sample stages release them (`release_shared_models`)."""
        from medcurate.privacy.text import TextDeidentifier

        config = self.config
        return shared_model("deid", config.model_dump_json(), lambda: TextDeidentifier(config))

    def process_samples(self, samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # Texts and free-text metadata values go through the model in one batch, each with its
        # sample's patient scope so that a surrogate in a title matches the one in the text.
        # A multimodal document's parts and captions join the same batch (`privacy.multimodal`).
        jobs: list[tuple[int, Any]] = [
            (index, None)
            for index, sample in enumerate(samples)
            if sample.get("text") and sample.get("texts") is None
        ]
        jobs += [
            (index, key)
            for index, sample in enumerate(samples)
            for key in free_text_metadata(sample, self.structured)
        ]
        part_texts = {
            (index, (kind, position)): text
            for index, sample in enumerate(samples)
            for kind, position, text in multimodal.text_jobs(sample)
        }
        jobs += list(part_texts)
        results = self.deidentifier.deidentify_batch(
            [
                samples[i]["text"] if key is None
                else part_texts[(i, key)] if isinstance(key, tuple)
                else samples[i]["metadata"][key]
                for i, key in jobs
            ],
            [patient_scope(samples[i]) for i, _ in jobs],
        )  # fmt: skip
        out = [dict(sample) for sample in samples]
        parts: dict[int, dict[tuple[str, int], Any]] = {}
        for (index, key), result in zip(jobs, results, strict=True):
            sample = out[index]
            if isinstance(key, tuple):
                parts.setdefault(index, {})[key] = result
            elif key is None:
                sample.update(
                    text=result.text, redactions=result.redactions, deid_confidence=result.confidence
                )
            elif result.spans:
                sample["metadata"] = {**sample["metadata"], key: result.text}
        for index, sample in enumerate(out):
            if sample.get("texts") is not None or sample.get("images") is not None:
                out[index] = sample = multimodal.apply_results(
                    sample, parts.get(index, {}), self.deidentifier, self.config
                )
            if sample.get("image_bytes") is not None:
                out[index] = sample = scrub_image_sample(sample, self.deidentifier, self.config)
            if sample.get("deid_confidence") is None:
                sample["deid_confidence"] = 1.0
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
