"""DICOM studies with their reports as one sample: the study's images in series and instance order,
then the text of its Structured Report(s), as MIMIC-CXR pairs a study with its report.

Ingest reads every DICOM file alone and tags it with its `study_key`; `assemble_study` (pure) joins
the parts of one study, and `AssembleStudies` groups them in a pipeline. A study of one part stays
the image or text sample it was. The parts merged into another are recorded as drops of reason
`merged_into_study`, so that every file read is still accounted for.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam

from medcurate.pipelines.ingest.common import STAGE
from medcurate.pipelines.stage import DROPS, SAMPLES, emit_event
from medcurate.schemas.events import Drop
from medcurate.schemas.sample import Modality, SourceKind, new_sample, sample_id

STUDY_KEY = "study_key"


def _order(sample: dict[str, Any]) -> tuple[int, int, int, str]:
    metadata = sample.get("metadata") or {}
    is_report = sample["modality"] != Modality.IMAGE
    return (
        int(is_report),
        int(metadata.get("series_number") or 0),
        int(metadata.get("instance_number") or 0),
        sample["source_uri"],
    )


def assemble_study(key: str, parts: Iterable[dict[str, Any]]) -> list[dict[str, Any] | Drop]:
    """One multimodal sample of a study's images and reports, and a Drop for each merged part."""
    ordered = sorted(parts, key=_order)
    if len(ordered) == 1:
        return ordered
    folder = ordered[0]["source_uri"].rsplit("/", 1)[0]
    uri = f"{folder}#study={key}"
    texts: list[str | None] = []
    images: list[bytes | None] = []
    meta: list[dict[str, Any] | None] = []
    reports = []
    for part in ordered:
        if part["modality"] == Modality.IMAGE:
            texts.append(None)
            images.append(part["image_bytes"])
            meta.append(
                {
                    "format": part["image_format"],
                    "width": part["image_width"],
                    "height": part["image_height"],
                    "bytes": len(part["image_bytes"]),
                    "phash": part["image_phash"],
                    "source_ref": part["source_uri"].rsplit("/", 1)[-1],
                    "caption": None,
                    "license": None,
                }
            )
        elif part.get("text"):
            texts.append(part["text"])
            images.append(None)
            meta.append(None)
            reports.append(part["text"])
    first = ordered[0].get("metadata") or {}
    metadata = {
        STUDY_KEY: key,
        "images": str(sum(1 for image in images if image is not None)),
        "reports": str(len(reports)),
        **{name: first[name] for name in ("modality", "body_part") if first.get(name)},
    }
    study = new_sample(
        id=sample_id(uri),
        source_uri=uri,
        source_kind=SourceKind.IMAGE.value,
        modality=Modality.MULTIMODAL.value,
        mime_type="application/x-interleaved",
        texts=texts,
        images=images,
        image_meta=meta,
        text="\n\n".join(reports) or None,
        metadata=metadata,
    )
    drops: list[dict[str, Any] | Drop] = [
        Drop(STAGE, "merged_into_study", part["source_uri"], part["id"]) for part in ordered
    ]
    return [study, *drops[1:]]


def _keyed(sample: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return (sample.get("metadata") or {}).get(STUDY_KEY) or "", sample


class _AssembleFn(beam.DoFn):
    def process(self, element: tuple[str, Iterable[dict[str, Any]]]) -> Iterator[Any]:
        key, parts = element
        for item in assemble_study(key, parts):
            yield emit_event(item) if isinstance(item, Drop) else item


def _split(sample: dict[str, Any]) -> Iterator[Any]:
    if (sample.get("metadata") or {}).get(STUDY_KEY):
        yield beam.pvalue.TaggedOutput("study", sample)
    else:
        yield sample


class AssembleStudies(beam.PTransform):
    """Samples in; out the same samples with each study's parts joined (`SAMPLES`), and a `DROPS`
    record for every part merged into its study."""

    def expand(self, samples):
        split = samples | "SplitStudies" >> beam.FlatMap(_split).with_outputs("study", main="other")
        assembled = (
            split.study
            | "KeyByStudy" >> beam.Map(_keyed)
            | "GroupStudy" >> beam.GroupByKey()
            | "Assemble" >> beam.ParDo(_AssembleFn()).with_outputs(DROPS, main=SAMPLES)
        )
        merged = (split.other, assembled[SAMPLES]) | "AllSamples" >> beam.Flatten()
        return {SAMPLES: merged, DROPS: assembled[DROPS]}
