"""Versioned publishing: staged shards become an immutable `vNNNN` folder with its manifest.

Publishing runs under the dataset's lock (concurrent runs queue) and in this order: shards and
validation results into the new folder, `manifest.json` (written whole, last in the folder), the
catalog row (the commit point), then `LATEST`, only when validation passed. A reader following the
catalog or `LATEST` never sees a half-written or failed version. A publish cut short at any step
leaves leftovers the next publish recovers before its own: a folder whose manifest and shards
verify is completed (catalog row, `LATEST`), anything else is rolled back, each with a log line.
The steps carry fault-injection points (`warehouse/faults.py`) so tests can crash at each.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable

from apache_beam.io.filesystems import FileSystems
from pydantic import ValidationError

from medcurate.schemas.manifest import Manifest, ShardInfo
from medcurate.warehouse import locks, storage
from medcurate.warehouse.catalog import DEFAULT_WAIT_S, Catalog
from medcurate.warehouse.faults import fault_point
from medcurate.warehouse.integrity import shard_checksums

log = logging.getLogger(__name__)

LATEST = "LATEST"
MANIFEST = "manifest.json"
_VERSION_FOLDER = re.compile(r"v\d{4,}")


def version_name(number: int) -> str:
    return f"v{number:04d}"


def version_folders(dataset_dir: str) -> list[str]:
    """Every `vNNNN` folder, empty or not, with or without a manifest."""
    return [name for name in storage.children(dataset_dir) if _VERSION_FOLDER.fullmatch(name)]


def latest_version(dataset_dir: str) -> str | None:
    path = storage.join(dataset_dir, LATEST)
    return storage.read_text(path).strip() if storage.exists(path) else None


def shard_info(path: str, relative_path: str) -> ShardInfo:
    """Size, SHA-256 and rows of a shard, plus the per-chunk checksums the loader verifies while streaming."""
    size, sha256 = storage.size_and_sha256(path)
    with FileSystems.open(path) as handle:
        checksums = shard_checksums(handle, size)
    rows = sum(checksums["row_groups"])
    return ShardInfo(path=relative_path, rows=rows, bytes=size, sha256=sha256, **checksums)


def _dataset_name(dataset_dir: str) -> str:
    return FileSystems.split(dataset_dir.rstrip("/"))[1]


def _catalogued(catalog_file: str, dataset: str, wait_s: float) -> list[dict]:
    with Catalog(catalog_file, read_only=False, wait_s=wait_s) as catalog:
        return catalog.versions(dataset)


def _verified_manifest(version_dir: str, version: str) -> Manifest | None:
    """The folder's manifest when it is complete and every shard matches it; else None."""
    try:
        manifest = read_manifest(version_dir)
    except (OSError, ValueError, ValidationError):
        return None
    if manifest.version != version:
        return None
    for shard in manifest.shards:
        path = storage.join(version_dir, shard.path)
        if not storage.exists(path) or storage.size_and_sha256(path) != (shard.bytes, shard.sha256):
            return None
    return manifest


def recover(dataset_dir: str, catalog_file: str, wait_s: float = DEFAULT_WAIT_S) -> list[str]:
    """Completes or rolls back what interrupted publishes left; returns one line per action.

    Call it under the dataset lock. Leftovers: version folders the catalog does not hold, a
    `LATEST` behind the catalog's newest validated version, staging folders of dead runs.
    """
    dataset = _dataset_name(dataset_dir)
    actions = []
    known = {row["version"] for row in _catalogued(catalog_file, dataset, wait_s)}
    for version in version_folders(dataset_dir):
        if version in known:
            continue
        version_dir = storage.join(dataset_dir, version)
        manifest = _verified_manifest(version_dir, version)
        if manifest is None:
            storage.delete_tree(version_dir)
            actions.append(
                f"rolled back {version}: an interrupted publish left it without a complete, verified manifest"
            )
            continue
        with Catalog(catalog_file, wait_s=wait_s) as catalog:
            catalog.register(manifest, version_dir)
        known.add(version)
        actions.append(
            f"completed {version} (run {manifest.run_id}): its manifest and {len(manifest.shards)} "
            "shard(s) verify; now in the catalog"
        )
    validated = [
        row["version"] for row in _catalogued(catalog_file, dataset, wait_s) if row["validation_passed"]
    ]
    current = latest_version(dataset_dir)
    if validated and (current is None or current < max(validated)):
        storage.write_text_atomic(storage.join(dataset_dir, LATEST), max(validated) + "\n")
        actions.append(f"LATEST moved from {current or '(none)'} to {max(validated)}, as the catalog says")
    actions += [f"removed staging of dead run {run_id}" for run_id in clean_staging(dataset_dir)]
    for action in actions:
        log.warning("%s: %s", dataset, action)
    return actions


def staged_runs(dataset_dir: str) -> list[str]:
    """Run ids with something under `.staging/` (a folder or a live-run marker)."""
    names = storage.children(storage.join(dataset_dir, locks.STAGING))
    return sorted({name.removesuffix(locks.MARKER_SUFFIX) for name in names if not name.startswith(".")})


def clean_staging(dataset_dir: str) -> list[str]:
    """Removes the staging folders (and markers) of runs that are no longer running; never a live run's."""
    dead = locks.dead_staging(dataset_dir, staged_runs(dataset_dir))
    for run_id in dead:
        staging_dir = storage.join(dataset_dir, locks.STAGING, run_id)
        if storage.exists(staging_dir):
            storage.delete_tree(staging_dir)
        locks.marker_path(dataset_dir, run_id).unlink(missing_ok=True)
    return dead


def publish_version(
    staged_shards: list[str],
    staged_validation: str,
    dataset_dir: str,
    catalog_file: str,
    make_manifest: Callable[[str, str | None, list[ShardInfo]], Manifest],
    wait_s: float = DEFAULT_WAIT_S,
) -> tuple[str, Manifest]:
    """Moves staged shards into the next version folder and returns (version folder, manifest).

    Waits for any other publish of this dataset first, and recovers what an interrupted one left.
    """
    with locks.publishing(dataset_dir):
        recover(dataset_dir, catalog_file, wait_s)
        fault_point("recovered")
        catalogued = [row["version"] for row in _catalogued(catalog_file, _dataset_name(dataset_dir), wait_s)]
        existing = sorted({*catalogued, *version_folders(dataset_dir)})
        version = version_name(int(existing[-1][1:]) + 1 if existing else 1)
        version_dir = storage.join(dataset_dir, version)
        shards = []
        for index, staged in enumerate(staged_shards):
            relative = f"data/part-{index:05d}.parquet"
            storage.move(staged, storage.join(version_dir, relative))
            shards.append(shard_info(storage.join(version_dir, relative), relative))
            if index == 0:
                fault_point("shard_moved")
        fault_point("shards_moved")
        storage.move(staged_validation, storage.join(version_dir, "validation", "results.json"))
        fault_point("validation_moved")
        manifest = make_manifest(version, latest_version(dataset_dir), shards)
        storage.write_text_atomic(
            storage.join(version_dir, MANIFEST), manifest.model_dump_json(indent=2) + "\n"
        )
        fault_point("manifest_written")
        with Catalog(catalog_file, wait_s=wait_s) as catalog:
            catalog.register(manifest, version_dir)
        fault_point("catalog_registered")
        if manifest.validation.passed:
            storage.write_text_atomic(storage.join(dataset_dir, LATEST), version + "\n")
            fault_point("latest_written")
    return version_dir, manifest


def read_manifest(version_dir: str) -> Manifest:
    return Manifest.model_validate(json.loads(storage.read_text(storage.join(version_dir, MANIFEST))))
