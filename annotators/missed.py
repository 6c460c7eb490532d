"""Physicians' marks on text as de-identification training data: missed PHI and over-redactions.

A physician reviews de-identified text. Any region they draw, whatever label set it came from, is
PHI the de-identification missed (only the de-identification's own redactions, carried over from
the prediction, are not); a region under "Not PHI (over-redacted)" says a redaction removed
something that is not PHI. `medcurate review pull` writes each mark with a few words around it
(no more of the note) in the gold layout `{text, spans: [{start, end, type}]}`:

- `missed_phi.jsonl`: what `medcurate deid learn-site --reviews` learns from;
- `over_redacted.jsonl`: allow-list candidates. The span is the placeholder (the original value is
  gone from the de-identified text); its neighbouring words show which rule or dictionary entry
  over-reached, and the site's data steward can look the value up in the source to add it to
  `deid.allow_list`.

`missed_phi.jsonl` holds the surviving PHI strings themselves: keep it with the review folder's
access rules, and out of shards and reports.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from medcurate.annotators.projects import NOT_PHI_CONTROLS, REDACTED_CONTROL

MISSED_PHI_FILE = "missed_phi.jsonl"
OVER_REDACTED_FILE = "over_redacted.jsonl"
# Characters of the note kept on each side of a flag (cut back to whole words): enough for the
# neighbouring words a site dictionary learns as context.
WINDOW = 48
_REGION_TYPES = ("labels", "rectanglelabels")


def _region_key(value: dict[str, Any]) -> tuple:
    if "start" in value:
        return ("span", int(value["start"]), int(value["end"]))
    return ("box", *(round(float(value.get(key, 0)), 2) for key in ("x", "y", "width", "height")))


def predicted_regions(task: dict[str, Any]) -> set[tuple]:
    """Where the task's predictions (the de-identification's own redactions) put regions."""
    return {
        _region_key(item.get("value") or {})
        for prediction in task.get("predictions") or []
        if isinstance(prediction, dict)
        for item in prediction.get("result") or []
        if item.get("type") in _REGION_TYPES
    }


def reviewer_regions(task: dict[str, Any], annotation: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(control, value) of every region the reviewer drew, whatever label set it came from.

    Only the de-identification's own redactions, carried into the annotation from the prediction
    where they were, are left out: nothing a reviewer marks is lost.
    """
    predicted = predicted_regions(task)
    regions = []
    for item in annotation.get("result") or []:
        name, value = item.get("from_name"), item.get("value") or {}
        if item.get("type") not in (*_REGION_TYPES, None) or ("start" not in value and "x" not in value):
            continue
        if name == REDACTED_CONTROL and _region_key(value) in predicted:
            continue
        regions.append((name, value))
    return regions


def region_label(value: dict[str, Any]) -> str:
    labels = value.get("labels") or value.get("rectanglelabels") or []
    return labels[0] if labels else "OTHER"


def _window(text: str, start: int, end: int) -> tuple[int, int]:
    """Bounds of a few whole words around [start, end)."""
    left = max(0, start - WINDOW)
    if left > 0:
        cut = text.find(" ", left, start)
        left = cut + 1 if cut != -1 else start
    right = min(len(text), end + WINDOW)
    if right < len(text):
        cut = text.rfind(" ", end, right)
        right = cut if cut != -1 else end
    return left, right


def _snippets(
    task: dict[str, Any], annotation: dict[str, Any], reviewer_id: int, over_redacted: bool
) -> list[dict[str, Any]]:
    text = (task.get("data") or {}).get("text")
    if not isinstance(text, str):
        return []
    flags = []
    for name, value in reviewer_regions(task, annotation):
        if "start" not in value or (name in NOT_PHI_CONTROLS) != over_redacted:
            continue
        start, end = max(0, int(value["start"])), min(len(text), int(value["end"]))
        if start >= end:
            continue
        left, right = _window(text, start, end)
        flags.append(
            {
                "sample_id": task["data"].get("sample_id"),
                "reviewer_id": reviewer_id,
                "text": text[left:right],
                "spans": [{"start": start - left, "end": end - left, "type": region_label(value)}],
            }
        )
    return flags


def missed_phi_flags(
    task: dict[str, Any], annotation: dict[str, Any], reviewer_id: int
) -> list[dict[str, Any]]:
    """The surviving-PHI marks of one annotation as gold-layout snippets (sample and reviewer ids kept)."""
    return _snippets(task, annotation, reviewer_id, over_redacted=False)


def over_redaction_flags(
    task: dict[str, Any], annotation: dict[str, Any], reviewer_id: int
) -> list[dict[str, Any]]:
    """The "not PHI" marks of one annotation: placeholders with their neighbouring words."""
    return _snippets(task, annotation, reviewer_id, over_redacted=True)


def write_flags(flags: list[dict[str, Any]], path: Path) -> Path:
    """Rewrite one flags file from a full pull."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(flag, ensure_ascii=False) + "\n" for flag in flags), encoding="utf-8")
    tmp.replace(path)
    return path


def write_missed_phi(flags: list[dict[str, Any]], folder: str | Path) -> Path:
    """Rewrite the review folder's missed-PHI file from a full pull."""
    return write_flags(flags, Path(folder) / MISSED_PHI_FILE)
