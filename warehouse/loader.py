"""Reading a published version from a training job: verified shards, split across ranks, streamed.

Shards are assigned to ranks round-robin, so each of `world_size` readers sees a disjoint part and
together they see every row once. Row groups stream one at a time, so memory stays at one batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from medcurate.schemas.manifest import Manifest, ShardInfo
from medcurate.warehouse import storage
from medcurate.warehouse.publish import latest_version, read_manifest


class ShardIntegrityError(RuntimeError):
    """A shard's bytes no longer match its manifest: never train on it."""


def resolve_version_dir(output_dir: str, dataset: str, version: str | None = None) -> str:
    dataset_dir = storage.join(output_dir, dataset)
    chosen = version or latest_version(dataset_dir)
    if chosen is None:
        raise FileNotFoundError(f"dataset {dataset!r} under {output_dir} has no validated (LATEST) version")
    return storage.join(dataset_dir, chosen)


class DatasetReader:
    def __init__(
        self,
        version_dir: str,
        columns: Sequence[str] | None = None,
        batch_size: int = 1024,
        rank: int = 0,
        world_size: int = 1,
        verify: bool = True,
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside 0..{world_size - 1}")
        self.version_dir = version_dir
        self.manifest: Manifest = read_manifest(version_dir)
        self.columns = list(columns) if columns else None
        self.batch_size = batch_size
        self.shards: list[ShardInfo] = self.manifest.shards[rank::world_size]
        self.verify = verify

    @property
    def num_rows(self) -> int:
        return sum(shard.rows for shard in self.shards)

    def _checked_path(self, shard: ShardInfo) -> str:
        path = storage.join(self.version_dir, shard.path)
        if self.verify and storage.size_and_sha256(path) != (shard.bytes, shard.sha256):
            raise ShardIntegrityError(f"{path} does not match the manifest of {self.manifest.version}")
        return path

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        for shard in self.shards:
            with FileSystems.open(self._checked_path(shard)) as handle:
                yield from pq.ParquetFile(handle).iter_batches(
                    batch_size=self.batch_size, columns=self.columns
                )
