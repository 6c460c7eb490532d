"""A published version as WebDataset tar shards (`medcurate export webdataset VERSION OUT`, in export_cli).

One sample is a run of tar members sharing its key (the sample id, which holds no dot, as
WebDataset splits a member name at its first dot): `KEY.json` with every field that is not image
bytes (the interleaved `texts` with their positions, `image_meta`, metadata, signals, review
outcome...), and one file per image, `KEY.P.EXT`, where P is the image's position in the interleaved
list (0 for an image sample) and EXT its format (`jpg`, `png`, `webp`). Image bytes are written as
published, byte for byte. Members are in sample order with fixed owner, mode and time, so the same
version always exports to the same bytes. Version-1 shards are read through the schema upgrade.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from medcurate.schemas.sample import from_arrow_row, upgrade_table
from medcurate.warehouse import storage

EXTENSIONS = {"jpeg": "jpg", "jpg": "jpg", "png": "png", "webp": "webp", "gif": "gif", "tiff": "tif"}
_BINARY = ("image_bytes", "images")
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def sample_key(sample_id: str) -> str:
    """A WebDataset key: no dots (they separate key from extension), no path separators."""
    return _KEY_UNSAFE.sub("_", sample_id)


def sample_members(sample: dict[str, Any]) -> list[tuple[str, bytes]]:
    """The tar members of one sample, in the order they are written: images, then `KEY.json`."""
    key = sample_key(sample["id"])
    members: list[tuple[str, bytes]] = []
    record = {name: value for name, value in sample.items() if name not in _BINARY}
    if sample.get("images") is not None:
        files: list[str | None] = []
        for position, (data, meta) in enumerate(
            zip(sample["images"], sample.get("image_meta") or [None] * len(sample["images"]), strict=True)
        ):
            if data is None:
                files.append(None)
                continue
            name = f"{key}.{position}.{EXTENSIONS.get(((meta or {}).get('format') or 'png').lower(), 'bin')}"
            members.append((name, data))
            files.append(name.split(".", 1)[1])
        record["image_files"] = files
    elif sample.get("image_bytes") is not None:
        name = f"{key}.0.{EXTENSIONS.get((sample.get('image_format') or 'png').lower(), 'bin')}"
        members.append((name, sample["image_bytes"]))
        record["image_files"] = [name.split(".", 1)[1]]
    members.append((f"{key}.json", json.dumps(record, default=_json_default, sort_keys=True).encode()))
    return members


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def read_samples(shard_paths: list[str], batch_rows: int = 256) -> Iterator[dict[str, Any]]:
    """Samples of the shards in order, a row group at a time (never a whole shard in memory)."""
    for path in shard_paths:
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
            parquet = pq.ParquetFile(handle)
            metadata = parquet.schema_arrow.metadata
            for batch in storage.row_group_batches(parquet, batch_rows):
                table = upgrade_table(pa.Table.from_batches([batch]).replace_schema_metadata(metadata))
                for row in table.to_pylist():
                    yield from_arrow_row(row)


@dataclass
class ExportResult:
    shards: list[str] = field(default_factory=list)
    samples: int = 0
    images: int = 0


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o444
    info.mtime = 0
    info.uname = info.gname = ""
    archive.addfile(info, io.BytesIO(data))


def export_webdataset(
    version_dir: str, out_dir: str, shard_bytes: int = 512 * 1024 * 1024, shard_samples: int = 10_000
) -> ExportResult:
    """Writes `OUT/DATASET-VERSION-NNNNNN.tar` shards, cut at `shard_bytes` or `shard_samples`."""
    from medcurate.warehouse.publish import read_manifest

    manifest = read_manifest(version_dir)
    samples = read_samples([storage.join(version_dir, shard.path) for shard in manifest.shards])
    storage.ensure_dir(out_dir)
    result = ExportResult()
    sample = next(samples, None)
    while sample is not None:
        name = storage.join(out_dir, f"{manifest.dataset}-{manifest.version}-{len(result.shards):06d}.tar")
        result.shards.append(name)
        size = count = 0
        with (
            FileSystems.create(name, mime_type="application/x-tar") as handle,
            tarfile.open(fileobj=handle, mode="w", format=tarfile.USTAR_FORMAT) as archive,
        ):
            while sample is not None and size < shard_bytes and count < shard_samples:
                for member, data in sample_members(sample):
                    _add(archive, member, data)
                    size += len(data) + tarfile.BLOCKSIZE
                    result.images += not member.endswith(".json")
                count += 1
                result.samples += 1
                sample = next(samples, None)
    return result
