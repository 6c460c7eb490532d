"""Staged samples: how the pipeline keeps memory bounded by the work in flight, not by the corpus.

The per-sample stages (ingest, signals, de-identification) stream their samples into Parquet files
under the run's staging folder, one file per bundle, as they arrive. What crosses a shuffle after
that is small: file and row-group references, ids, hashes, signatures. Later passes read the staged
files back one row group at a time (`read_unit`), so a worker holds one row group, never a corpus.

Only plain Beam primitives are used (ParDo, GroupByKey, Flatten, side inputs), and no output is
emitted from `finish_bundle` (some runners lose those): a staged file's path is emitted when the
file is opened, and the shuffle that follows waits for the bundle, so for its readers it is whole.
"""

from __future__ import annotations

import json
import math
import uuid
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from medcurate.schemas.sample import SAMPLE_SCHEMA, from_arrow_row, samples_to_table
from medcurate.warehouse import storage

# A row group is flushed at this many rows or this many bytes of text and images, whichever first:
# the unit of work of every later pass, and the most of one file a writer or reader holds.
ROW_GROUP_ROWS = 2000
ROW_GROUP_BYTES = 16 * 1024 * 1024
# Rows of a row group turned into Python samples at once when it is read back.
READ_BATCH_ROWS = 256
# Rows per published shard when `publish.num_shards` is 0 (sizes the validation's per-shard frame).
SHARD_ROWS = 100_000

# (file path, row-group index, rows): one readable piece of a staged file.
Unit = tuple[str, int, int]


def _approx_bytes(sample: dict[str, Any]) -> int:
    """What a sample weighs in a writer's buffer, roughly: its text and image bytes."""
    size = 256 + len(sample.get("text") or "") + len(sample.get("image_bytes") or b"")
    size += sum(len(part or "") for part in sample.get("texts") or [])
    return size + sum(len(part or b"") for part in sample.get("images") or [])


class ShardWriter:
    """Streams sample dicts into one Parquet file. Samples are converted to Arrow every
    `ROW_GROUP_ROWS` rows (or `ROW_GROUP_BYTES`), and a row group is written once `row_group_bytes`
    of Arrow data is buffered: what a writer holds is bounded, whatever the file's size."""

    def __init__(self, path: str, codec: str = "zstd", row_group_bytes: int = ROW_GROUP_BYTES) -> None:
        self.path = path
        self.row_group_bytes = row_group_bytes
        storage.ensure_dir(path.rsplit("/", 1)[0])
        self._handle = FileSystems.create(path)
        self._writer = pq.ParquetWriter(self._handle, SAMPLE_SCHEMA, compression=codec)
        self._rows: list[dict[str, Any]] = []
        self._row_bytes = 0
        self._tables: list[pa.Table] = []
        self.rows = 0

    def write(self, sample: dict[str, Any]) -> None:
        self._rows.append(sample)
        self._row_bytes += _approx_bytes(sample)
        self.rows += 1
        if len(self._rows) >= ROW_GROUP_ROWS or self._row_bytes >= ROW_GROUP_BYTES:
            self._convert()
            if sum(table.nbytes for table in self._tables) >= self.row_group_bytes:
                self._flush()

    def _convert(self) -> None:
        if self._rows:
            self._tables.append(samples_to_table(self._rows))
            self._rows, self._row_bytes = [], 0

    def _flush(self) -> None:
        if self._tables:
            table = pa.concat_tables(self._tables)
            self._writer.write_table(table, row_group_size=max(1, table.num_rows))
            self._tables = []

    def close(self) -> None:
        self._convert()
        self._flush()
        self._writer.close()
        self._handle.close()


class RecordWriter:
    """Streams small records (tuples in the order of `schema`'s fields, after `to_row`) into one
    Parquet file, `ROWS` records converted to Arrow and written at a time."""

    ROWS = 20_000

    def __init__(
        self,
        path: str,
        schema: pa.Schema,
        to_row: Callable[[Any], tuple] | None = None,
        rows: int | None = None,
    ) -> None:
        self.schema = schema
        self.to_row = to_row
        self.rows = rows or self.ROWS
        storage.ensure_dir(path.rsplit("/", 1)[0])
        self._handle = FileSystems.create(path)
        self._writer = pq.ParquetWriter(self._handle, schema, compression="zstd")
        self._rows: list[tuple] = []

    def write(self, record: Any) -> None:
        self._rows.append(self.to_row(record) if self.to_row else record)
        if len(self._rows) >= self.rows:
            self._flush()

    def _flush(self) -> None:
        if self._rows:
            columns = zip(*self._rows, strict=True)
            arrays = [
                pa.array(column, type=field.type) for column, field in zip(columns, self.schema, strict=True)
            ]
            self._writer.write_table(pa.Table.from_arrays(arrays, schema=self.schema))
            self._rows = []

    def close(self) -> None:
        self._flush()
        self._writer.close()
        self._handle.close()


class JsonLinesWriter:
    """Streams JSON-serialisable records into one JSON-lines file (keys sorted)."""

    def __init__(self, path: str) -> None:
        storage.ensure_dir(path.rsplit("/", 1)[0])
        self._handle = FileSystems.create(path)

    def write(self, record: Any) -> None:
        self._handle.write((json.dumps(record, sort_keys=True) + "\n").encode("utf-8"))

    def close(self) -> None:
        self._handle.close()


class _FilePerBundleFn(beam.DoFn):
    """Elements in, written to one file per bundle under `folder` (Parquet unless `SUFFIX` says
    otherwise); out, the file's path (once, when the file is opened). Its readers must sit behind
    a shuffle of those paths, or run after the pipeline."""

    SUFFIX = ".parquet"

    def __init__(self, folder: str, prefix: str) -> None:
        self.folder = folder
        self.prefix = prefix

    def open(self, path: str) -> ShardWriter | RecordWriter | JsonLinesWriter:
        raise NotImplementedError

    def start_bundle(self) -> None:
        self.writer: ShardWriter | RecordWriter | JsonLinesWriter | None = None

    def process(self, element: Any) -> Iterator[str]:
        if self.writer is None:
            path = storage.join(self.folder, f"{self.prefix}-{uuid.uuid4().hex}{self.SUFFIX}")
            self.writer = self.open(path)
            yield path
        self.writer.write(element)

    def finish_bundle(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class WriteStagedFn(_FilePerBundleFn):
    """Samples, staged: a row group per conversion."""

    def open(self, path: str) -> ShardWriter:
        return ShardWriter(path, row_group_bytes=1)


class WriteRecordsFn(_FilePerBundleFn):
    """Small records (`RecordWriter`)."""

    def __init__(
        self,
        folder: str,
        prefix: str,
        schema: pa.Schema,
        to_row: Callable[[Any], tuple] | None = None,
        rows: int | None = None,
    ) -> None:
        super().__init__(folder, prefix)
        self.schema = schema
        self.to_row = to_row
        self.rows = rows

    def open(self, path: str) -> RecordWriter:
        return RecordWriter(path, self.schema, self.to_row, self.rows)


class WriteJsonLinesFn(_FilePerBundleFn):
    """Events (dead letters, drops): a JSON-lines file per bundle."""

    SUFFIX = ".jsonl"

    def open(self, path: str) -> JsonLinesWriter:
        return JsonLinesWriter(path)


def row_group_units(path: str) -> list[Unit]:
    """The row groups of a staged file, each a unit of work."""
    with storage.open_read(path) as handle:
        metadata = pq.ParquetFile(handle).metadata
    return [(path, index, metadata.row_group(index).num_rows) for index in range(metadata.num_row_groups)]


def read_unit(unit: Unit) -> Iterator[tuple[str, dict[str, Any]]]:
    """(position, sample) for every row of one row group; the position names the row uniquely."""
    path, index, _ = unit
    name = path.rsplit("/", 1)[-1]
    row = 0
    with storage.open_read(path) as handle:
        # A few hundred rows at a time as Python objects (several times their Arrow size), never
        # the whole row group at once.
        for batch in pq.ParquetFile(handle).iter_batches(READ_BATCH_ROWS, row_groups=[index]):
            for sample in batch.to_pylist():
                yield f"{name}:{index}:{row}", from_arrow_row(sample)
                row += 1


def position_unit(folder: str, position: str) -> tuple[Unit, int]:
    """The row group (as a unit, row count unknown) and row a position of `read_unit` names, for a
    file staged under `folder`."""
    name, index, row = position.rsplit(":", 2)
    return (storage.join(folder, name), int(index), 0), int(row)


def read_rows(unit: Unit, rows: Iterable[int]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row, sample) for the given rows of one row group, in row order: a second pass that needs a
    few rows turns only those into Python objects."""
    path, index, _ = unit
    wanted = sorted(set(rows))
    start = 0
    with storage.open_read(path) as handle:
        for batch in pq.ParquetFile(handle).iter_batches(READ_BATCH_ROWS, row_groups=[index]):
            lo, hi = bisect_left(wanted, start), bisect_left(wanted, start + batch.num_rows)
            if hi > lo:
                picked = batch.take([row - start for row in wanted[lo:hi]]).to_pylist()
                for row, sample in zip(wanted[lo:hi], picked, strict=True):
                    yield row, from_arrow_row(sample)
            start += batch.num_rows


def plan_shards(units: list[Unit], num_shards: int = 0) -> list[tuple[int, int, list[Unit]]]:
    """(shard index, shard count, units) for every output shard: `num_shards` of them, or one per
    `SHARD_ROWS` rows; at least one, so a run that keeps nothing still publishes an empty shard.
    Units go to the shard with the fewest rows so far, largest first, in a fixed order."""
    rows = sum(unit[2] for unit in units)
    count = num_shards or max(1, math.ceil(rows / SHARD_ROWS))
    shards: list[list[Unit]] = [[] for _ in range(count)]
    loads = [0] * count
    for unit in sorted(units, key=lambda unit: (-unit[2], unit[0], unit[1])):
        lightest = loads.index(min(loads))
        shards[lightest].append(unit)
        loads[lightest] += unit[2]
    return [(index, count, sorted(shard)) for index, shard in enumerate(shards)]


class StagedUnits(beam.PTransform):
    """Paths of staged files (emitted as they were opened) -> their row groups, spread over workers.
    The first shuffle waits for every writing bundle, so the files are complete when read."""

    def expand(self, paths):
        return (
            paths
            | "FilesWritten" >> beam.Distinct()
            | "RowGroups" >> beam.FlatMap(row_group_units)
            | "SpreadUnits" >> beam.Reshuffle()
        )
