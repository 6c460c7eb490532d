"""Physicians' "missed PHI" flags as site-dictionary training data.

A physician reviews de-identified text; a string they mark under "Mark any PHI that survived" is PHI
the de-identification missed. `medcurate review pull` writes each flag with a few words around it
(no more of the note) to `missed_phi.jsonl` in the review folder, in the gold layout
`{text, spans: [{start, end, type}]}` that `medcurate deid learn-site --reviews` learns from.

The file holds the surviving PHI strings themselves: keep it with the review folder's access rules,
and out of shards and reports.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MISSED_PHI_FILE = "missed_phi.jsonl"
# Characters of the note kept on each side of a flag (cut back to whole words): enough for the
# neighbouring words a site dictionary learns as context.
WINDOW = 48
_FLAG_CONTROL = "phi"


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


def missed_phi_flags(
    task: dict[str, Any], annotation: dict[str, Any], reviewer_id: int
) -> list[dict[str, Any]]:
    """The flags of one annotation as gold-layout snippets (sample id and reviewer id kept)."""
    text = (task.get("data") or {}).get("text")
    if not isinstance(text, str):
        return []
    flags = []
    for item in annotation.get("result") or []:
        value = item.get("value") or {}
        if item.get("from_name") != _FLAG_CONTROL or not value.get("labels"):
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
                "spans": [{"start": start - left, "end": end - left, "type": value["labels"][0]}],
            }
        )
    return flags


def write_missed_phi(flags: list[dict[str, Any]], folder: str | Path) -> Path:
    """Rewrite the review folder's missed-PHI file from a full pull."""
    path = Path(folder) / MISSED_PHI_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(flag, ensure_ascii=False) + "\n" for flag in flags), encoding="utf-8")
    tmp.replace(path)
    return path
