"""Versioned publishing: staged shards become an immutable `vNNNN` folder with its manifest.

Order matters: data, validation results and manifest first, catalog next, `LATEST` last and only
when validation passed, so a reader following `LATEST` never sees a half-written or failed version.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from medcurate.schemas.manifest import Manifest, ShardInfo
from medcurate.warehouse import storage
from medcurate.warehouse.catalog import Catalog

LATEST = "LATEST"
MANIFEST = "manifest.json"
_VERSION = re.compile(r"/(v\d{4,})/manifest\.json$")


def version_name(number: int) -> str:
    return f"v{number:04d}"


def published_versions(dataset_dir: str) -> list[str]:
    found = (_VERSION.search(path) for path in storage.glob(storage.join(dataset_dir, "v*", MANIFEST)))
    return sorted(match.group(1) for match in found if match)


def latest_version(dataset_dir: str) -> str | None:
    path = storage.join(dataset_dir, LATEST)
    return storage.read_text(path).strip() if storage.exists(path) else None


def shard_info(path: str, relative_path: str) -> ShardInfo:
    size, sha256 = storage.size_and_sha256(path)
    with FileSystems.open(path) as handle:
        rows = pq.ParquetFile(handle).metadata.num_rows
    return ShardInfo(path=relative_path, rows=rows, bytes=size, sha256=sha256)


def publish_version(
    staged_shards: list[str],
    staged_validation: str,
    dataset_dir: str,
    catalog: Catalog,
    make_manifest: Callable[[str, str | None, list[ShardInfo]], Manifest],
) -> tuple[str, Manifest]:
    """Moves staged shards into the next version folder and returns (version folder, manifest)."""
    existing = published_versions(dataset_dir)
    version = version_name(int(existing[-1][1:]) + 1 if existing else 1)
    version_dir = storage.join(dataset_dir, version)
    if storage.exists(version_dir):
        raise FileExistsError(
            f"{version_dir} exists without a manifest: a publish was interrupted; move it away"
        )
    shards = []
    for index, staged in enumerate(staged_shards):
        relative = f"data/part-{index:05d}.parquet"
        storage.move(staged, storage.join(version_dir, relative))
        shards.append(shard_info(storage.join(version_dir, relative), relative))
    storage.move(staged_validation, storage.join(version_dir, "validation", "results.json"))
    manifest = make_manifest(version, latest_version(dataset_dir), shards)
    storage.write_text(storage.join(version_dir, MANIFEST), manifest.model_dump_json(indent=2) + "\n")
    catalog.register(manifest, version_dir)
    if manifest.validation.passed:
        storage.write_text(storage.join(dataset_dir, LATEST), version + "\n")
    return version_dir, manifest


def read_manifest(version_dir: str) -> Manifest:
    return Manifest.model_validate(json.loads(storage.read_text(storage.join(version_dir, MANIFEST))))
