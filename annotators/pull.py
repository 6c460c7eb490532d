"""Pull reviews from Label Studio: snapshot export, review records, agreement, consensus, statistics.

The snapshot export (not the quick JSON export) is used so that predictions come back whole.
Every pull rewrites the review folder from a full snapshot, so pulling twice is harmless.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from label_studio_sdk import LabelStudio

from medcurate.annotators.agreement import agreement, consensus, reviewer_stats
from medcurate.annotators.config import ReviewConfig
from medcurate.annotators.missed import (
    MISSED_PHI_FILE,
    OVER_REDACTED_FILE,
    missed_phi_flags,
    over_redaction_flags,
    region_label,
    reviewer_regions,
    write_flags,
)
from medcurate.annotators.projects import (
    IMAGE,
    MULTIMODAL,
    NOT_PHI_CONTROLS,
    PAIRING_MISMATCH,
    TEXT,
    connect,
    project_title,
)
from medcurate.annotators.push import reviewer_client
from medcurate.annotators.reviewers import list_reviewers
from medcurate.annotators.verdicts import VERDICTS_FILE
from medcurate.privacy.config import DeidConfig
from medcurate.schemas.review import REVIEW_SCHEMA, VERDICT_SCHEMA

log = logging.getLogger("medcurate.review.pull")

RECORDS_FILE = "review_records.parquet"
REVIEWERS_FILE = "reviewers.json"
AGREEMENT_FILE = "agreement.json"


@dataclass
class PullResult:
    tasks: int
    records: int
    verdicts: dict[str, int]
    agreement: dict[str, dict[str, Any]]
    out_dir: str
    missed_phi: int = 0  # physicians' flags of PHI that survived, written to missed_phi.jsonl
    over_redacted: int = 0  # "not PHI" marks on redactions, written to over_redacted.jsonl
    foreign: int = 0  # annotations in a reviewer's project made or changed by someone else: ignored


def export_snapshot(client: LabelStudio, project_id: int, timeout_s: float = 600) -> list[dict[str, Any]]:
    """All tasks of a project with annotations and whole predictions, via a snapshot export."""
    snapshot = client.projects.exports.create(
        project_id,
        title="medcurate pull",
        serialization_options={
            "predictions": {"only_id": False},
            "annotations__completed_by": {"only_id": False},
        },
    )
    deadline = time.monotonic() + timeout_s
    while snapshot.status not in ("completed", "failed"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"snapshot export {snapshot.id} not ready after {timeout_s:.0f}s")
        time.sleep(0.5)
        snapshot = client.projects.exports.get(project_id, snapshot.id)
    if snapshot.status == "failed":
        raise RuntimeError(f"snapshot export {snapshot.id} failed")
    body = b"".join(client.projects.exports.download(project_id, snapshot.id, export_type="JSON"))
    client.projects.exports.delete(project_id, snapshot.id)
    return json.loads(body)


def _reviewer(completed_by: Any) -> tuple[int, str | None]:
    if isinstance(completed_by, dict):
        return int(completed_by["id"]), completed_by.get("email")
    return int(completed_by), None


def _made_by(annotation: dict[str, Any], owner: int) -> bool:
    """Whether only the project's reviewer wrote this annotation.

    Label Studio Community checks organizations on projects and tasks but not on annotations
    (it assumes a single organization): another logged-in reviewer who knows a task id can add an
    annotation to it or change one through the API. Such annotations are not counted.
    """
    updated_by = annotation.get("updated_by")
    if isinstance(updated_by, dict):
        updated_by = updated_by.get("id")
    return _reviewer(annotation["completed_by"])[0] == owner and updated_by in (None, owner)


def annotation_to_record(task: dict[str, Any], annotation: dict[str, Any], project: str) -> dict[str, Any]:
    """One review record from one Label Studio annotation (see schemas/review.py)."""
    reviewer_id, reviewer = _reviewer(annotation["completed_by"])
    record: dict[str, Any] = {
        "sample_id": task["data"]["sample_id"],
        "project": project,
        "task_id": task["id"],
        "annotation_id": annotation["id"],
        "reviewer_id": reviewer_id,
        "reviewer": reviewer,
        "verdict": None,
        "accuracy": None,
        "specialty": None,
        "image_quality": None,
        "phi_spans": [],
        "phi_boxes": [],
        "not_phi_spans": [],
        "not_phi_boxes": [],
        "comment": None,
        "lead_time_s": annotation.get("lead_time"),
        "model_version": next((p.get("model_version") for p in task.get("predictions") or []), None),
        "created_at": annotation.get("created_at"),
    }
    for item in annotation.get("result") or []:
        name, value = item.get("from_name"), item.get("value") or {}
        if name == "verdict" and value.get("choices"):
            record["verdict"] = record["verdict"] or value["choices"][0]
        elif name == "pairing" and PAIRING_MISMATCH in (value.get("choices") or []):
            record["verdict"] = "reject"  # a caption that does not describe its image: no pair to publish
        elif name == "specialty" and value.get("choices"):
            record["specialty"] = value["choices"][0]
        elif name in ("accuracy", "image_quality") and value.get("rating") is not None:
            record[name] = int(value["rating"])
        elif name == "comment" and value.get("text"):
            record["comment"] = "\n".join(value["text"])
    for name, value in reviewer_regions(task, annotation):  # lossless: every region a reviewer drew
        over = name in NOT_PHI_CONTROLS
        if "start" in value:
            span = {"start": int(value["start"]), "end": int(value["end"]), "type": region_label(value)}
            record["not_phi_spans" if over else "phi_spans"].append(span)
        else:
            box = {key: float(value[key]) for key in ("x", "y", "width", "height")}
            record["not_phi_boxes" if over else "phi_boxes"].append({**box, "type": region_label(value)})
    return record


def deidentify_comments(records: list[dict[str, Any]], deid: DeidConfig) -> None:
    """Physicians may quote the patient in a comment: comments go through the notes' de-identifier
    before anything is written, so no PHI a reviewer types reaches the review folder."""
    commented = [record for record in records if record["comment"]]
    if not commented:
        return
    # Imported here: the de-identifier pulls in spaCy and torch, which importers of this module
    # (the pipeline's driver among them) do not otherwise need.
    from medcurate.privacy.text import TextDeidentifier

    results = TextDeidentifier(deid).deidentify_batch([record["comment"] for record in commented])
    for record, result in zip(commented, results, strict=True):
        record["comment"] = result.text


def _write_parquet(rows: list[dict[str, Any]], schema: pa.Schema, path: Path) -> None:
    table = pa.Table.from_pylist(rows, schema=schema)
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)


def pull_reviews(
    config: ReviewConfig,
    out_dir: str | Path | None = None,
    client: LabelStudio | None = None,
    deid: DeidConfig | None = None,
) -> PullResult:
    """Export both review projects, write review records (comments de-identified with `deid`, the
    run config's deid section), verdicts, agreement and reviewer stats."""
    client = client or connect(config)
    out = Path(out_dir or config.reviews_dir)
    out.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    flags: list[dict[str, Any]] = []
    over: list[dict[str, Any]] = []
    foreign = 0
    tasks = 0
    # The shared project (no reviewers registered), then every reviewer's own projects.
    sources: list[tuple[LabelStudio, int | None]] = [(client, None)]
    sources += [
        (reviewer_client(config, r.email, client), r.user_id) for r in list_reviewers(config.label_studio)
    ]
    for kind in (TEXT, IMAGE, MULTIMODAL):
        title = project_title(config, kind)
        for source, owner in sources:
            project = next((p for p in source.projects.list(title=title) if p.title == title), None)
            if project is None:
                continue
            exported = export_snapshot(source, project.id)
            tasks += len(exported)
            for task in exported:
                for annotation in task.get("annotations") or []:
                    if annotation.get("was_cancelled"):
                        continue
                    if owner is not None and not _made_by(annotation, owner):
                        foreign += 1
                        continue
                    records.append(annotation_to_record(task, annotation, kind))
                    if kind == TEXT:
                        flags.extend(missed_phi_flags(task, annotation, records[-1]["reviewer_id"]))
                        over.extend(over_redaction_flags(task, annotation, records[-1]["reviewer_id"]))
    if foreign:
        log.warning("%d annotation(s) in reviewers' own projects not made by that reviewer: ignored", foreign)
    deidentify_comments(records, deid or DeidConfig())
    verdicts = consensus(records, config.consensus, config.reviewers_per_task)
    agreement_report = agreement(records)
    _write_parquet(records, REVIEW_SCHEMA, out / RECORDS_FILE)
    _write_parquet(verdicts, VERDICT_SCHEMA, out / VERDICTS_FILE)
    (out / AGREEMENT_FILE).write_text(json.dumps(agreement_report, indent=2))
    (out / REVIEWERS_FILE).write_text(json.dumps(reviewer_stats(records, verdicts), indent=2))
    write_flags(flags, out / MISSED_PHI_FILE)
    write_flags(over, out / OVER_REDACTED_FILE)
    decisions: dict[str, int] = {}
    for verdict in verdicts:
        decisions[verdict["decision"]] = decisions.get(verdict["decision"], 0) + 1
    log.info("pulled %d tasks, %d reviews: %s", tasks, len(records), decisions)
    return PullResult(
        tasks, len(records), decisions, agreement_report, str(out), len(flags), len(over), foreign
    )
