"""Push samples to Label Studio as review tasks: batched, idempotent, and never lost.

Every push first appends its tasks to a durable JSONL outbox, then sends the whole outbox in
batches, looking up which sample ids the project already holds (the sample id is the task key).
A batch that fails is retried with backoff; before each retry the ids are looked up again,
because a request cut off mid-way may still have been committed. What cannot be sent stays in
the outbox for the next push.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from label_studio_sdk import LabelStudio
from label_studio_sdk.core.api_error import ApiError
from PIL import Image

from medcurate.annotators import routing
from medcurate.annotators.config import ReviewConfig
from medcurate.annotators.projects import (
    IMAGE,
    MULTIMODAL,
    REDACTED_TYPES,
    SPECIALTIES,
    TEXT,
    connect,
    ensure_project,
    existing_sample_ids,
    local_images_dir,
)
from medcurate.annotators.reviewers import (
    Reviewer,
    assigned_reviewers,
    list_reviewers,
    reviewer_token,
    specialists,
)
from medcurate.annotators.routing import DEID_BOXES
from medcurate.annotators.server import read_state
from medcurate.annotators.specialty import UNKNOWN, predict_specialty
from medcurate.schemas.sample import Modality, ReviewStatus, table_to_samples

log = logging.getLogger("medcurate.review.push")
T = TypeVar("T")

# Errors after which the server may come back: connection refused or cut, timeouts, 5xx.
TRANSIENT = (httpx.TransportError, ConnectionError, TimeoutError)


@dataclass
class PushResult:
    sent: int = 0
    already_present: int = 0
    left_in_outbox: int = 0
    batches: int = 0
    retries: int = 0
    unreachable: str = ""  # why Label Studio could not be reached, when it could not


def _phi_label(entity_type: str) -> str:
    return entity_type if entity_type in REDACTED_TYPES else "OTHER"


def _prediction(sample: dict[str, Any], model_version: str, result: list[dict[str, Any]]) -> dict[str, Any]:
    """A prediction scored with the quality score, so reviewers can sort tasks by it."""
    prediction: dict[str, Any] = {"model_version": model_version, "result": result}
    if sample.get("quality_score") is not None:
        prediction["score"] = float(sample["quality_score"])
    return prediction


def _text_prediction(sample: dict[str, Any], model_version: str) -> dict[str, Any]:
    text = sample.get("text") or ""
    result = [
        {
            "id": f"r{i}",
            "from_name": "redacted",
            "to_name": "text",
            "type": "labels",
            "value": {
                "start": r["start"],
                "end": r["end"],
                "text": text[r["start"] : r["end"]],
                "labels": [_phi_label(r["type"])],
            },
            **({"score": r["score"]} if r.get("score") is not None else {}),
        }
        for i, r in enumerate(sample.get("redactions") or [])
    ]
    return _prediction(sample, model_version, result)


def _image_size(sample: dict[str, Any]) -> tuple[int, int]:
    if sample.get("image_width") and sample.get("image_height"):
        return sample["image_width"], sample["image_height"]
    with Image.open(io.BytesIO(sample["image_bytes"])) as image:  # reads the header only
        return image.size


def _image_prediction(sample: dict[str, Any], model_version: str) -> dict[str, Any]:
    """De-id's burned-in text boxes (pixels, in `metadata["deid.boxes"]`) as percent rectangles.

    OCR boxes carry no PHI type, so they show as OTHER.
    """
    boxes = json.loads((sample.get("metadata") or {}).get(DEID_BOXES) or "[]")
    result = []
    if boxes:
        width, height = _image_size(sample)
        for i, (left, top, right, bottom) in enumerate(boxes):
            value = {
                "x": 100 * left / width,
                "y": 100 * top / height,
                "width": 100 * (right - left) / width,
                "height": 100 * (bottom - top) / height,
                "rotation": 0,
                "rectanglelabels": ["OTHER"],
            }
            result.append(
                {
                    "id": f"b{i}",
                    "from_name": "redacted",
                    "to_name": "image",
                    "type": "rectanglelabels",
                    "original_width": width,
                    "original_height": height,
                    "value": value,
                }
            )
    return _prediction(sample, model_version, result)


def _image_url(sample: dict[str, Any], config: ReviewConfig) -> str:
    """A Local Files link when a root is configured (the file is written there), else a data URI."""
    fmt = (sample.get("image_format") or "png").lower()
    folder = local_images_dir(config)
    if folder is not None:
        path = folder / f"{sample['id']}.{fmt}"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            path.write_bytes(sample["image_bytes"])
        return f"/data/local-files/?d={path.relative_to(folder.parent)}"
    encoded = base64.b64encode(sample["image_bytes"]).decode()
    return f"data:image/{fmt};base64,{encoded}"


# Why a sample is in the queue, in the words the task header shows a physician.
REASON_TEXT = {
    routing.LOW_DEID_CONFIDENCE: "de-identification unsure",
    routing.IMAGE_TEXT: "text burned into the image was blacked out",
    routing.IMAGE_TEXT_UNCHECKED: "burned-in text could not be checked",
    routing.QUALITY_UNCERTAIN: "quality model unsure",
    routing.AUDIT: "random audit",
    routing.MODEL_UNCERTAIN: "relevance or quality model unsure (active learning)",
}


def review_note(sample: dict[str, Any], specialty: str = UNKNOWN) -> str:
    """The task's one-line header: why it is here, the predicted specialty, de-identification
    confidence and redactions."""
    reasons = [REASON_TEXT.get(r, r.replace("_", " ")) for r in sample.get("review_reasons") or []]
    parts = [f"Why: {', '.join(reasons)}" if reasons else "Why: review"]
    if specialty != UNKNOWN:
        parts.append(f"likely {SPECIALTIES.get(specialty, specialty)}")
    if sample.get("deid_confidence") is not None:
        parts.append(f"de-identification confidence {float(sample['deid_confidence']):.2f}")
    redactions = len(sample.get("redactions") or [])
    boxes = len(json.loads((sample.get("metadata") or {}).get(DEID_BOXES) or "[]"))
    if redactions or boxes:
        parts.append(f"{redactions + boxes} item(s) removed (grey)")
    parts.append(f"sample {str(sample['id'])[:8]}")
    return " · ".join(parts)


def image_pair(sample: dict[str, Any]) -> tuple[int, str]:
    """The pair a reviewer judges: the document's first image and its caption, else the text
    right after it, else the whole text (a study's report)."""
    texts, images = sample["texts"], sample["images"]
    position = next(i for i, image in enumerate(images) if image is not None)
    caption = ((sample.get("image_meta") or [None] * len(images))[position] or {}).get("caption")
    following = next((t for t in texts[position + 1 :] if t is not None), None)
    return position, caption or following or sample.get("text") or ""


def _pair_task(sample: dict[str, Any], data: dict[str, Any], config: ReviewConfig) -> dict[str, Any]:
    position, caption = image_pair(sample)
    meta = (sample.get("image_meta") or [None] * len(sample["images"]))[position] or {}
    boxes = json.loads((sample.get("metadata") or {}).get(DEID_BOXES) or "{}")
    image = {
        "id": f"{sample['id']}-{position}",
        "image_bytes": sample["images"][position],
        "image_format": meta.get("format"),
        "image_width": meta.get("width"),
        "image_height": meta.get("height"),
        "quality_score": sample.get("quality_score"),
        "metadata": {DEID_BOXES: json.dumps(boxes.get(str(position), []))},
    }
    data.update(
        image=_image_url(image, config),
        caption=caption,
        text=sample.get("text") or "",
        image_count=sum(1 for part in sample["images"] if part is not None),
    )
    return {"data": data, "predictions": [_image_prediction(image, config.model_version)]}


def sample_to_task(sample: dict[str, Any], config: ReviewConfig) -> tuple[str, dict[str, Any]]:
    """(project kind, Label Studio task) for one sample; the task carries the sample id as its key
    and the predicted specialty (`predicted_specialty`, which push routes by)."""
    specialty = predict_specialty(sample.get("text") or "")
    data: dict[str, Any] = {
        "sample_id": sample["id"],
        "source_kind": sample.get("source_kind"),
        "language": sample.get("language") or "",
        "quality_score": None
        if sample.get("quality_score") is None
        else round(float(sample["quality_score"]), 3),
        "review_reasons": list(sample.get("review_reasons") or []),
        "deid_confidence": None
        if sample.get("deid_confidence") is None
        else round(float(sample["deid_confidence"]), 3),
        "predicted_specialty": specialty,
        "review_note": review_note(sample, specialty),
    }
    if sample.get("modality") == Modality.MULTIMODAL and any(sample.get("images") or []):
        return MULTIMODAL, _pair_task(sample, data, config)
    if sample.get("modality") == Modality.IMAGE:
        data["image"] = _image_url(sample, config)
        return IMAGE, {"data": data, "predictions": [_image_prediction(sample, config.model_version)]}
    data["text"] = sample.get("text") or ""
    return TEXT, {"data": data, "predictions": [_text_prediction(sample, config.model_version)]}


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


def _json_lines(path: Path) -> Iterator[Any]:
    """The JSON lines of an append log, skipping lines a crash cut mid-write.

    Skipping is safe: a cut task line was never sent (its samples are still pending in their
    shards and come back with the next push), and a cut acknowledgement only means its task is
    looked up again, found, and not sent twice.
    """
    if not path.exists():
        return
    torn = 0
    with path.open() as handle:
        for line in handle:
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    torn += 1
    if torn:
        log.warning("%s: skipped %d line(s) cut by an interrupted write", path.name, torn)


class Outbox:
    """Pending tasks on disk, one JSON line per task, plus a log of the keys already delivered.

    Acknowledging a batch appends its keys to the `.acked` log (cheap, per batch); the outbox is
    compacted once per push, so a push of N tasks writes O(N), not O(N^2 / batch).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.acked = self.path.with_name(self.path.name + ".acked")

    def load(self) -> dict[tuple[str, str], dict[str, Any]]:
        pending: dict[tuple[str, str], dict[str, Any]] = {}
        for entry in _json_lines(self.path):
            pending[(entry["kind"], entry["task"]["data"]["sample_id"])] = entry["task"]
        for key in _json_lines(self.acked):
            pending.pop(tuple(key), None)
        return pending

    def _write(self, path: Path, lines: Iterable[str], mode: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open(mode) as handle:
            if mode == "a" and handle.tell() and not _ends_with_newline(path):
                handle.write("\n")  # after a torn write, start a fresh line rather than extend it
            handle.writelines(lines)
            handle.flush()
            os.fsync(handle.fileno())

    def append(self, entries: Iterable[tuple[str, dict[str, Any]]]) -> None:
        self._write(self.path, (json.dumps({"kind": k, "task": t}) + "\n" for k, t in entries), "a")

    def ack(self, keys: Iterable[tuple[str, str]]) -> None:
        self._write(self.acked, (json.dumps(list(key)) + "\n" for key in keys), "a")

    def compact(self, pending: dict[tuple[str, str], dict[str, Any]]) -> None:
        """Atomically rewrite the outbox with what is still pending and forget the acknowledgements."""
        if pending:
            tmp = self.path.with_name(self.path.name + ".tmp")
            self._write(
                tmp, (json.dumps({"kind": k, "task": t}) + "\n" for (k, _), t in pending.items()), "w"
            )
            tmp.replace(self.path)
        else:
            self.path.unlink(missing_ok=True)
        self.acked.unlink(missing_ok=True)


def _is_transient(error: Exception) -> bool:
    if isinstance(error, ApiError):
        return error.status_code is None or error.status_code >= 500 or error.status_code == 429
    return isinstance(error, TRANSIENT)


def pending_in_shards(paths: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The samples of published shards that wait for review (only those rows are read)."""
    for path in paths:
        with FileSystems.open(path) as handle:
            table = pq.read_table(handle, filters=[("review_status", "=", ReviewStatus.PENDING.value)])
        yield from table_to_samples(table)


def push_samples(
    samples: Iterable[dict[str, Any]], config: ReviewConfig, client: LabelStudio | None = None
) -> PushResult:
    """Queue `samples` as review tasks and send everything pending; safe to call again at any time.

    With reviewers registered (`medcurate labelstudio add-reviewer`), each task goes to the own
    projects of `reviewers_per_task` of them; without, to one shared project.
    """
    outbox = Outbox(config.outbox)
    new = [sample_to_task(sample, config) for sample in samples]
    if new:
        outbox.append(new)
    pending = outbox.load()
    result = PushResult()
    reviewers = list_reviewers(config.label_studio)
    try:
        if pending and client is None:
            if read_state(config.label_studio) is None:  # never started: as good as down
                raise ConnectionError("Label Studio is not running (medcurate labelstudio start)")
            client = connect(config)
        for kind in (TEXT, IMAGE, MULTIMODAL):
            keys = [key for key in pending if key[0] == kind]
            if keys:
                targets = _retrying(
                    lambda kind=kind: _targets(client, config, kind, reviewers), config, result
                )
                _send_kind(targets, config, keys, pending, outbox, result)
    except Exception as error:
        if not _is_transient(error):
            raise
        result.unreachable = str(error).splitlines()[0] if str(error) else type(error).__name__
        log.warning("Label Studio unreachable (%s): tasks kept in the outbox", result.unreachable)
    finally:
        outbox.compact(pending)
    result.left_in_outbox = len(pending)
    return result


@dataclass
class _Target:
    """A project tasks go to, with the sample ids it already holds."""

    client: LabelStudio
    project_id: int
    present: set[str]
    reviewer: Reviewer | None = None
    stale: bool = False


def reviewer_client(config: ReviewConfig, email: str, base: LabelStudio | None = None) -> LabelStudio:
    """A client acting as one reviewer (their organization, their projects), at `base`'s server
    or the running one."""
    state = read_state(config.label_studio)
    if base is None and state is None:
        raise ConnectionError("Label Studio is not running (medcurate labelstudio start)")
    url = base._client_wrapper.get_base_url() if base is not None else state.url
    return LabelStudio(base_url=url, api_key=reviewer_token(config.label_studio, email), timeout=120)


def _targets(
    client: LabelStudio, config: ReviewConfig, kind: str, reviewers: list[Reviewer]
) -> list[_Target]:
    if not reviewers:
        project_id = ensure_project(client, config, kind)
        return [_Target(client, project_id, existing_sample_ids(client, project_id))]
    if len(reviewers) < config.reviewers_per_task:
        log.warning(
            "%d reviewer(s) registered, %d per task wanted: verdicts stay incomplete",
            len(reviewers),
            config.reviewers_per_task,
        )
    targets = []
    for reviewer in reviewers:
        own = reviewer_client(config, reviewer.email, client)
        project_id = ensure_project(own, config, kind, per_reviewer=True)
        targets.append(_Target(own, project_id, existing_sample_ids(own, project_id), reviewer))
    return targets


def task_reviewers(task: dict[str, Any], reviewers: list[Reviewer], config: ReviewConfig) -> list[Reviewer]:
    """The reviewers a task goes to: specialists of its predicted specialty first (tasks queued
    before specialties were predicted have none), then the stable hash over everyone."""
    specialty = task["data"].get("predicted_specialty")
    preferred = (
        specialists(specialty, reviewers, config.specialty_reviewers) if specialty != UNKNOWN else set()
    )
    return assigned_reviewers(task["data"]["sample_id"], reviewers, config.reviewers_per_task, preferred)


def _send_kind(
    targets: list[_Target],
    config: ReviewConfig,
    keys: list[tuple[str, str]],
    pending: dict[tuple[str, str], dict[str, Any]],
    outbox: Outbox,
    result: PushResult,
) -> None:
    reviewers = [t.reviewer for t in targets if t.reviewer is not None]
    chosen: dict[str, set[str]] = {}

    def wants(target: _Target, key: tuple[str, str]) -> bool:
        if target.reviewer is None:
            return True
        if key[1] not in chosen:
            chosen[key[1]] = {r.email for r in task_reviewers(pending[key], reviewers, config)}
        return target.reviewer.email in chosen[key[1]]

    def send(target: _Target, batch: list[tuple[str, str]]) -> set[str]:
        if target.stale:
            # The last request may have been committed before it was cut off: look again first.
            target.present.update(existing_sample_ids(target.client, target.project_id))
            target.stale = False
        todo = [key for key in batch if key[1] not in target.present]
        if todo:
            target.stale = True
            target.client.projects.import_tasks(
                target.project_id, request=[pending[key] for key in todo], commit_to_project=True
            )
            target.stale = False
        target.present.update(key[1] for key in todo)
        return {key[1] for key in todo}

    for start in range(0, len(keys), config.batch_size):
        batch = keys[start : start + config.batch_size]
        sent: set[str] = set()
        for target in targets:
            mine = [key for key in batch if wants(target, key)]
            sent |= _retrying(lambda target=target, mine=mine: send(target, mine), config, result)
        result.sent += len(sent)
        result.already_present += len(batch) - len(sent)
        result.batches += 1
        outbox.ack(batch)
        for key in batch:
            del pending[key]


def _retrying(call: Callable[[], T], config: ReviewConfig, result: PushResult) -> T:
    """`call()`, retried on transient errors with exponential backoff, at most `config.max_retries` times."""
    for attempt in range(config.max_retries + 1):
        try:
            return call()
        except Exception as error:
            if not _is_transient(error) or attempt == config.max_retries:
                raise
            result.retries += 1
            log.info("retry %d after %s", attempt + 1, type(error).__name__)
            time.sleep(config.backoff_s * 2**attempt)
    raise AssertionError("unreachable")
