"""DICOM studies with their reports as one sample: the study's images in series and instance order,
then the text of its Structured Report(s) or of a report file beside it (`report.txt`,
`NAME.report.txt`), as MIMIC-CXR pairs a study with its report.

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


def _folder(uri: str) -> str:
    return uri.split("#", 1)[0].rsplit("/", 1)[0]


def is_report_file(sample: dict[str, Any]) -> bool:
    """A text file named as a study's report: `report.txt` (or .md), `NAME.report.txt`."""
    name = sample["source_uri"].split("#", 1)[0].rsplit("/", 1)[-1].lower()
    return sample["modality"] == Modality.TEXT and (
        name in ("report.txt", "report.md") or name.endswith((".report.txt", ".report.md"))
    )


def study_folders(sample: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(folder, study key) for a study part's folder and the folder above it (series subfolders)."""
    folder = _folder(sample["source_uri"])
    key = sample["metadata"][STUDY_KEY]
    yield folder, key
    if "/" in folder:
        yield folder.rsplit("/", 1)[0], key


def attach_report(sample: dict[str, Any], studies_by_folder: dict[str, set[str]]) -> dict[str, Any]:
    """A report file beside exactly one study joins it; beside none or several, it stays a note."""
    studies = studies_by_folder.get(_folder(sample["source_uri"])) or set()
    if len(studies) != 1:
        return sample
    return {**sample, "metadata": {**(sample.get("metadata") or {}), STUDY_KEY: next(iter(studies))}}


def _split(sample: dict[str, Any]) -> Iterator[Any]:
    if (sample.get("metadata") or {}).get(STUDY_KEY):
        yield beam.pvalue.TaggedOutput("study", sample)
    elif is_report_file(sample):
        yield beam.pvalue.TaggedOutput("report", sample)
    else:
        yield sample


def _report_tag(sample: dict[str, Any]) -> Iterator[Any]:
    if (sample.get("metadata") or {}).get(STUDY_KEY):
        yield beam.pvalue.TaggedOutput("study", sample)
    else:
        yield sample


class AssembleStudies(beam.PTransform):
    """Samples in; out the same samples with each study's parts joined (`SAMPLES`), and a `DROPS`
    record for every part merged into its study. A report file next to a study (`is_report_file`)
    joins it; only (folder, study key) pairs cross a shuffle to find it.

    `merge=False` leaves the samples that are no study part (most of a corpus) out of any shuffle or
    Flatten: SAMPLES is then the pair (those samples, studies and the reports left alone), for
    callers that process each branch apart (a runner may hold a Flatten's output in memory)."""

    def __init__(self, merge: bool = True) -> None:
        super().__init__()
        self.merge = merge

    def expand(self, samples):
        split = samples | "SplitStudies" >> beam.FlatMap(_split).with_outputs("study", "report", main="other")
        folders = (
            split.study
            | "StudyFolders" >> beam.FlatMap(study_folders)
            | "StudiesByFolder" >> beam.CombinePerKey(beam.combiners.ToSetCombineFn())
        )
        reports = (
            split.report
            | "AttachReports" >> beam.Map(attach_report, beam.pvalue.AsDict(folders))
            | "SplitReports" >> beam.FlatMap(_report_tag).with_outputs("study", main="other")
        )
        assembled = (
            (split.study, reports.study)
            | "StudyParts" >> beam.Flatten()
            | "KeyByStudy" >> beam.Map(_keyed)
            | "GroupStudy" >> beam.GroupByKey()
            | "Assemble" >> beam.ParDo(_AssembleFn()).with_outputs(DROPS, main=SAMPLES)
        )
        if not self.merge:
            studies = (reports.other, assembled[SAMPLES]) | "StudySamples" >> beam.Flatten()
            return {SAMPLES: (split.other, studies), DROPS: assembled[DROPS]}
        merged = (split.other, reports.other, assembled[SAMPLES]) | "AllSamples" >> beam.Flatten()
        return {SAMPLES: merged, DROPS: assembled[DROPS]}
