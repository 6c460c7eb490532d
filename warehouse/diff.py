"""What changed between two published versions: samples added, removed and changed, and why.

Samples are matched by id (stable across runs). A sample is changed when any content or review
field differs; provenance fields (run id, pipeline version, config hash, ingest time) change every
run and are ignored. Reasons come from the runs' own records: a removed sample the newer run
dropped or dead-lettered carries that stage/reason; an added sample the older run had dropped
says so; a changed sample names the fields that changed (review status with its transition).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import duckdb

from medcurate.schemas.manifest import Manifest
from medcurate.warehouse import storage
from medcurate.warehouse.catalog import read_parquet_sql
from medcurate.warehouse.publish import read_manifest

IGNORED = {"id", "run_id", "pipeline_version", "config_hash", "ingested_at"}


@dataclass
class VersionDiff:
    old: str
    new: str
    # (change, source kind, reason) -> samples; a changed sample counts once per changed field
    counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    samples: Counter[str] = field(default_factory=Counter)  # change -> samples

    def totals(self) -> dict[str, int]:
        return {change: self.samples[change] for change in ("added", "removed", "changed")}

    def rows(self) -> list[dict[str, Any]]:
        return [
            {"change": c, "source_kind": k, "reason": r, "samples": n}
            for (c, k, r), n in sorted(self.counts.items(), key=lambda item: (item[0][0], -item[1], item[0]))
        ]


def _run_events(version_dir: str, manifest: Manifest) -> dict[str, str]:
    """sample id -> `stage/reason` from the run's drop report and dead letters, when kept beside it."""
    output = version_dir.rstrip("/").rsplit("/", 2)[0]
    paths = [
        storage.join(output, "reports", manifest.dataset, manifest.run_id, "drops.jsonl"),
        storage.join(output, "dead_letter", manifest.dataset, f"{manifest.run_id}.jsonl"),
    ]
    reasons: dict[str, str] = {}
    for path in paths:
        if not storage.exists(path):
            continue
        for line in storage.read_text(path).splitlines():
            if line.strip():
                event = json.loads(line)
                if event.get("sample_id"):
                    reasons[event["sample_id"]] = f"{event['stage']}/{event['reason']}"
    return reasons


def _shards(version_dir: str, manifest: Manifest) -> str:
    return read_parquet_sql([storage.join(version_dir, s.path) for s in manifest.shards])


def diff_versions(old_dir: str, new_dir: str) -> VersionDiff:
    old, new = read_manifest(old_dir), read_manifest(new_dir)
    connection = duckdb.connect()
    columns = [
        row[0]
        for row in connection.execute(f"DESCRIBE SELECT * FROM {_shards(new_dir, new)}").fetchall()
        if row[0] not in IGNORED
    ]
    old_columns = {
        row[0] for row in connection.execute(f"DESCRIBE SELECT * FROM {_shards(old_dir, old)}").fetchall()
    }
    compared = [c for c in columns if c in old_columns]
    changed = ", ".join(f'CASE WHEN a."{c}" IS DISTINCT FROM b."{c}" THEN \'{c}\' END' for c in compared)
    rows = connection.execute(
        f"""
        SELECT coalesce(a.id, b.id), coalesce(b.source_kind, a.source_kind),
               a.id IS NULL, b.id IS NULL,
               list_filter([{changed}], lambda x: x IS NOT NULL),
               a.review_status, b.review_status
        FROM {_shards(old_dir, old)} a FULL OUTER JOIN {_shards(new_dir, new)} b ON a.id = b.id
        """
    ).fetchall()
    connection.close()
    result = VersionDiff(old.version, new.version)
    dropped_now = _run_events(new_dir, new)
    dropped_before = _run_events(old_dir, old)
    for sample, kind, added, removed, fields, status_a, status_b in rows:
        change = "added" if added else "removed" if removed else "changed" if fields else None
        if change:
            result.samples[change] += 1
        if added:
            before = dropped_before.get(sample)
            reason = f"left out of {old.version}: {before}" if before else "new input"
            result.counts["added", kind, reason] += 1
        elif removed:
            now = dropped_now.get(sample)
            reason = now or f"not among the inputs of {new.version}'s run"
            result.counts["removed", kind, reason] += 1
        elif fields:
            for name in fields:
                reason = f"review_status {status_a} -> {status_b}" if name == "review_status" else name
                result.counts["changed", kind, reason] += 1
    return result


def render(result: VersionDiff) -> str:
    totals = result.totals()
    lines = [
        f"{result.old} -> {result.new}: {totals['added']} added, {totals['removed']} removed, "
        f"{totals['changed']} changed"
    ]
    if result.counts:
        lines.append(f"{'change':<8} {'source_kind':<12} {'samples':>8}  reason")
        lines += [
            f"{r['change']:<8} {r['source_kind']:<12} {r['samples']:>8,}  {r['reason']}"
            for r in result.rows()
        ]
        lines.append("(a changed sample is listed once per field that changed)")
    return "\n".join(lines)
