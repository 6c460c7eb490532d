"""Reading a published version from a training job: one global order, split across ranks and workers.

For a (seed, epoch) the order of samples is a function of the version and the order settings
alone: row groups are permuted and dealt to `lanes` lanes; each lane's rows are permuted inside
windows of `window // lanes` row groups; lane batches of `batch_size` rows are taken from the lanes
in turn. Row filters drop non-matching rows from that order without reordering the rest. The
order is cut into global steps of `batch_size * world_size` positions; rank r takes the r-th
`batch_size` slice of every step, and DataLoader worker w of a rank serves the rank's steps w,
w + num_workers, ... (the order in which a DataLoader collects them). So the sequence of samples
the job trains on does not depend on the number of ranks or workers, every sample is read once per
epoch, and a resume needs only the number of positions consumed. When `lanes` is a multiple of
ranks x workers, each reader only ever reads its own lanes' row groups: the job decodes once.

Integrity is checked while streaming: each column chunk read is compared with the digest the
publish recorded, so the first batch never waits for whole shards to be hashed.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import io
import itertools
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pyarrow._parquet import ParquetReader

from medcurate.schemas.manifest import Manifest, ShardInfo
from medcurate.warehouse import integrity

STATE_FORMAT = 1
MANIFEST = "manifest.json"
Tail = Literal["partial", "pad", "drop"]
_TAILS = ("partial", "pad", "drop")
_READ_THREADS = 8
# Rows gathered at once for batches that may share buffers (no workers): at most this many, and
# at most about _GATHER_BYTES of them, so that each gather stays in cache and reuses freed memory.
_GATHER_ROWS = 4096
_GATHER_BYTES = 4 << 20
# Row groups are decoded in record batches of about this many bytes: pyarrow's jemalloc pool hands
# every allocation of 8 MiB or more back to the system when it is freed, so a whole row group's
# text column (grown by doubling while decoding) faulted in fresh memory for every window.
_DECODE_BYTES = 1 << 20
_DECODE_MIN_ROWS = 256
# String and binary columns holding more than this in a window are joined as views (see _Window).
_VIEW_BYTES = 4 << 20
_VIEWS = {
    pa.string(): pa.string_view(),
    pa.large_string(): pa.string_view(),
    pa.binary(): pa.binary_view(),
    pa.large_binary(): pa.binary_view(),
}
_VIEW_SLOT = pa.binary(16)  # one view: length, prefix and where the value lies


class ShardIntegrityError(RuntimeError):
    """A shard's bytes no longer match its manifest: never train on it."""


class ResumeError(ValueError):
    """A saved state belongs to another version, seed or order: resuming would not be exact."""


def resolve_version_dir(output_dir: str, dataset: str, version: str | None = None) -> str:
    """The folder of `version`, or of the version `LATEST` names (validated versions only)."""
    from medcurate.warehouse import storage
    from medcurate.warehouse.publish import latest_version

    dataset_dir = storage.join(output_dir, dataset)
    chosen = version or latest_version(dataset_dir)
    if chosen is None:
        raise FileNotFoundError(f"dataset {dataset!r} under {output_dir} has no validated (LATEST) version")
    return storage.join(dataset_dir, chosen)


def filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """A pyarrow filesystem and path for a local path, `gs://`, `s3://` or any fsspec URL."""
    if "://" not in uri or uri.startswith("file://"):
        return pafs.LocalFileSystem(), os.path.abspath(uri.removeprefix("file://"))
    scheme = uri.split("://", 1)[0]
    if scheme in ("s3", "gs", "gcs"):
        try:
            return pafs.FileSystem.from_uri(uri)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError):
            pass  # pyarrow built without this filesystem: fsspec's implementation below
    import fsspec

    fs, path = fsspec.core.url_to_fs(uri)
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), path


@dataclass(frozen=True)
class RowFilter:
    """Which rows a trainer wants; None means any. Evaluated on these small columns only."""

    source_kind: tuple[str, ...] | None = None
    modality: tuple[str, ...] | None = None
    review_status: tuple[str, ...] | None = None
    min_quality: float | None = None

    @classmethod
    def of(cls, value: RowFilter | Mapping[str, Any] | None) -> RowFilter | None:
        if value is None or isinstance(value, RowFilter):
            return value if value is None or value.active else None
        unknown = set(value) - {"source_kind", "modality", "review_status", "min_quality"}
        if unknown:
            raise ValueError(f"unknown row filter keys: {sorted(unknown)}")

        def names(key: str) -> tuple[str, ...] | None:
            chosen = value.get(key)
            if chosen is None:
                return None
            return (chosen,) if isinstance(chosen, str) else tuple(sorted(chosen))

        quality = value.get("min_quality")
        made = cls(
            names("source_kind"),
            names("modality"),
            names("review_status"),
            None if quality is None else float(quality),
        )
        return made if made.active else None

    @property
    def active(self) -> bool:
        return any(v is not None for v in asdict(self).values())

    @property
    def columns(self) -> list[str]:
        wanted = [k for k in ("source_kind", "modality", "review_status") if getattr(self, k) is not None]
        return [*wanted, "quality_score"] if self.min_quality is not None else wanted

    def mask(self, table: pa.Table) -> np.ndarray:
        keep = np.ones(table.num_rows, dtype=bool)
        for key in ("source_kind", "modality", "review_status"):
            allowed = getattr(self, key)
            if allowed is not None:
                column = table.column(key).combine_chunks()
                keep &= _bits(pc.is_in(column, value_set=_strings(allowed)))
        if self.min_quality is not None:
            column = table.column("quality_score").combine_chunks().cast(pa.float64())
            values = np.frombuffer(column.buffers()[1], dtype=np.float64)[column.offset :][: len(column)]
            keep &= _bits(column, validity=True) & (values >= self.min_quality)
        return keep

    def to_json(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


class _Shard:
    """One Parquet shard: footer read once, row groups read with each chunk verified."""

    def __init__(self, fs: pafs.FileSystem, path: str, info: ShardInfo, verify: bool) -> None:
        self.fs = fs
        self.path = path
        self.info = info
        self.verify = verify
        self._handle: pa.NativeFile | None = None
        self._fd: int | None = None  # local files: read with preadv into the verification buffer
        self._metadata: pq.FileMetaData | None = None
        self._leaves: dict[str, list[int]] = {}
        self._whole_checked = False
        self._lock = threading.Lock()

    def _open(self) -> pa.NativeFile:
        if self._handle is None:
            handle = self.fs.open_input_file(self.path)
            size = handle.size()
            if self.verify and size != self.info.bytes:
                raise ShardIntegrityError(
                    f"{self.path} does not match the manifest: {size} bytes, expected {self.info.bytes}"
                )
            length = integrity.footer_length(handle.read_at(8, size - 8))
            footer = handle.read_at(length + 8, size - 8 - length)
            if (
                self.verify
                and self.info.footer_sha256
                and integrity.digest(footer) != self.info.footer_sha256
            ):
                raise ShardIntegrityError(f"{self.path} does not match the manifest: its footer changed")
            self._metadata = integrity.metadata_from_footer(footer)
            for leaf in range(self._metadata.num_columns):
                top = self._metadata.schema.column(leaf).path.split(".")[0]
                self._leaves.setdefault(top, []).append(leaf)
            if isinstance(self.fs, pafs.LocalFileSystem) and hasattr(os, "preadv"):
                self._fd = os.open(self.path, os.O_RDONLY)
            self._handle = handle
        return self._handle

    def __del__(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @property
    def metadata(self) -> pq.FileMetaData:
        self._open()
        assert self._metadata is not None
        return self._metadata

    def _check_whole(self, handle: pa.NativeFile) -> None:
        """Older manifests have no chunk digests: hash this shard in full once, on first use."""
        digest = hashlib.sha256()
        offset, size = 0, handle.size()
        while offset < size:
            block = handle.read_at(min(8 << 20, size - offset), offset)
            digest.update(block)
            offset += len(block)
        if digest.hexdigest() != self.info.sha256:
            raise ShardIntegrityError(f"{self.path} does not match the manifest: its SHA-256 changed")
        self._whole_checked = True

    def _read_into(self, handle: pa.NativeFile, target: memoryview, offset: int) -> None:
        """Reads the bytes at `offset` straight into `target`: one copy, hashed where they lie."""
        if self._fd is None:
            target[:] = handle.read_at(len(target), offset)
            return
        done = 0
        while done < len(target):
            got = os.preadv(self._fd, [target[done:]], offset + done)
            if got <= 0:
                raise ShardIntegrityError(f"{self.path} is shorter than its manifest says")
            done += got

    def read(self, group: int, columns: list[str]) -> pa.Table:
        """Row group `group`, these columns; safe to call from several threads at once."""
        with self._lock:
            handle = self._open()
            if self.verify and not self.info.chunk_sha256 and not self._whole_checked:
                self._check_whole(handle)
        missing = [c for c in columns if c not in self._leaves]
        if missing:
            raise KeyError(f"{self.path} has no column(s) {missing}")
        leaves = [leaf for name in columns for leaf in self._leaves[name]]
        if not self.verify or not self.info.chunk_sha256:
            return self._decode(handle, group, leaves)
        expected = self.info.chunk_sha256[group]
        # The verified chunks are read, at their places, into one buffer spanning them (a row group's
        # worth, never cleared) and decoded from there: the decoder sees exactly the bytes hashed.
        ranges = {leaf: integrity.chunk_range(self.metadata, group, leaf) for leaf in sorted(leaves)}
        low = min(start for start, _ in ranges.values())
        high = max(start + length for start, length in ranges.values())
        space = pa.allocate_buffer(high - low, memory_pool=_memory_pool())
        view = memoryview(space).cast("B")
        for leaf, (start, length) in ranges.items():
            data = view[start - low : start - low + length]
            self._read_into(handle, data, start)
            if integrity.digest(data) != expected[leaf]:
                raise ShardIntegrityError(
                    f"{self.path} does not match the manifest: row group {group}, column "
                    f"{self.metadata.schema.column(leaf).path} changed"
                )
        verified = pa.PythonFile(_Verified(self.path, space, low, handle.size()), mode="r")
        return self._decode(verified, group, leaves, pre_buffer=False)

    def _decode(
        self, source: pa.NativeFile, group: int, leaves: list[int], pre_buffer: bool = True
    ) -> pa.Table:
        """Row group `group`, these leaf columns, decoded in this thread (the caller runs row groups
        in parallel) into the loader's memory pool, in record batches of about `_DECODE_BYTES`."""
        reader = ParquetReader(memory_pool=_memory_pool())
        reader.open(source, metadata=self._metadata, pre_buffer=pre_buffer, arrow_extensions_enabled=True)
        meta = self.metadata.row_group(group)
        size = sum(meta.column(leaf).total_uncompressed_size for leaf in leaves)
        step = max(_DECODE_MIN_ROWS, _DECODE_BYTES * meta.num_rows // max(size, 1))
        if step >= meta.num_rows:
            return reader.read_row_group(group, column_indices=leaves, use_threads=False)
        batches = reader.iter_batches(step, [group], column_indices=leaves, use_threads=False)
        return pa.Table.from_batches(list(batches))


class _Verified:
    """A row group's verified column chunks as a read-only file at their offsets in the shard:
    pyarrow decodes from it through `pa.PythonFile` (one zero-copy read per chunk), and a read of
    any byte that was not verified fails instead of decoding it."""

    closed = False

    def __init__(self, path: str, data: pa.Buffer, low: int, size: int) -> None:
        self._path, self._data, self._low, self._size, self._at = path, data, low, size, 0

    def seek(self, offset: int, whence: int = 0) -> int:
        self._at = offset + (0, self._at, self._size)[whence]
        return self._at

    def tell(self) -> int:
        return self._at

    def read(self, size: int = -1) -> pa.Buffer:
        start = self._at - self._low
        size = self._size - self._at if size < 0 else size
        if start < 0 or start + size > self._data.size:
            raise ShardIntegrityError(f"{self._path}: a read outside its verified column chunks")
        self._at += size
        return self._data.slice(start, size)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def close(self) -> None:
        self._data = pa.py_buffer(b"")


# Arrow <-> numpy by hand: pyarrow's own conversions (`pa.array`, `to_numpy`, `pa.scalar`) import
# pandas on first use, which costs half a second in every DataLoader worker.


def _strings(values: Sequence[str]) -> pa.Array:
    encoded = [v.encode() for v in values]
    offsets = np.cumsum([0, *map(len, encoded)]).astype(np.int32)
    return pa.Array.from_buffers(
        pa.string(), len(encoded), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
    )


def _bits(array: pa.Array, validity: bool = False) -> np.ndarray:
    """A boolean array's values (nulls as False), or any array's validity, as a numpy bool array."""
    buffers = array.buffers()
    valid = np.ones(len(array), dtype=bool)
    if buffers[0] is not None:
        valid = np.unpackbits(np.frombuffer(buffers[0], np.uint8), bitorder="little")
        valid = valid[array.offset : array.offset + len(array)].astype(bool)
    if validity:
        return valid
    values = np.unpackbits(np.frombuffer(buffers[1], np.uint8), bitorder="little")
    return values[array.offset : array.offset + len(array)].astype(bool) & valid


def _concat(parts: list[pa.RecordBatch]) -> pa.RecordBatch:
    """One batch from its pieces in several windows (a batch that straddles a window's end)."""
    if len(parts) == 1:
        return parts[0]
    schema = parts[0].schema
    columns = [
        pa.concat_arrays([part.column(i) for part in parts], memory_pool=_memory_pool())
        for i in range(len(schema))
    ]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _indices(rows: np.ndarray) -> pa.Array:
    """Row indices as an Arrow array without `pa.array`, whose first call imports pandas (0.5 s)."""
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(rows), [None, pa.py_buffer(rows)])


@functools.cache
def _memory_pool() -> pa.MemoryPool:
    """jemalloc where pyarrow has it. The loader allocates and frees a window's worth of memory per
    window; pyarrow's default mimalloc hands freed memory back to the system within milliseconds,
    so every window faults its memory in afresh, which in a forked DataLoader worker measured about
    1.5 times the loader's CPU per sample. jemalloc keeps freed memory for reuse a while."""
    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:  # a pyarrow build without jemalloc (Windows)
        return pa.default_memory_pool()


class _Window:
    """One window's decoded rows as a single batch, and the rows this reader takes, in order.

    Large string and binary columns are joined as views (16 bytes per row pointing into the
    decoded record batches, which stay where they are) rather than copied into one window-sized
    buffer: such a buffer is fresh memory for every window (see `_DECODE_BYTES`). Gathers take the
    views and cast them back to the column's type, which copies the values into the batch.

    Rows are gathered a few thousand at a time, or one batch at a time for `compact` batches (whose
    buffers then hold only their rows, which a DataLoader pickles). Gathering the whole window at
    once instead writes a second window-sized copy to fresh memory, which measured several times
    slower than the same gather into memory just freed; small gathers stay in cache. With `quick`,
    the first request is gathered straight from the row groups, before they are joined: the first
    batch of an epoch does not wait for that copy."""

    def __init__(self, table: pa.Table | None, rows: np.ndarray, group: int = 1, quick: bool = False) -> None:
        self.rows, self.group, self._quick = rows, group, quick
        self._table = table if table is not None and table.num_rows and len(rows) else None
        self._data: pa.RecordBatch | None = None
        self._views: list[tuple[int, list[pa.Buffer], pa.DataType, pc.CastOptions]] = []
        self._low, self._taken = 0, pa.record_batch([])

    def _joined(self) -> pa.RecordBatch:
        if self._data is None:
            assert self._table is not None
            table, self._table = self._table, None
            row_bytes = max(1, table.nbytes // table.num_rows)
            self.group = max(1, min(self.group, _GATHER_BYTES // row_bytes))
            pool = _memory_pool()
            columns = []
            for index, field in enumerate(table.schema):
                column = table.column(index)
                view = _VIEWS.get(field.type)
                if view is None or column.nbytes < _VIEW_BYTES:
                    chunks = column.chunks
                    columns.append(
                        chunks[0] if len(chunks) == 1 else pa.concat_arrays(chunks, memory_pool=pool)
                    )
                    continue
                views = pa.concat_arrays(
                    [pc.call_function("cast", [c], pc.CastOptions(view), pool) for c in column.chunks],
                    memory_pool=pool,
                )
                buffers = views.buffers()
                self._views.append((index, buffers[2:], view, pc.CastOptions(field.type)))
                columns.append(
                    pa.Array.from_buffers(_VIEW_SLOT, len(views), buffers[:2], offset=views.offset)
                )
            self._schema = table.schema
            self._data = pa.RecordBatch.from_arrays(columns, names=table.schema.names)
        return self._data

    def _gather(self, rows: np.ndarray) -> pa.RecordBatch:
        """These rows of the joined window, with the columns joined as views back in their type."""
        taken = _take(self._joined(), rows)
        columns = taken.columns
        for index, buffers, view, back in self._views:
            slots = columns[index]
            head = slots.buffers()
            views = pa.Array.from_buffers(view, len(slots), [head[0], head[1], *buffers], offset=slots.offset)
            columns[index] = pc.call_function("cast", [views], back, _memory_pool())
        return pa.RecordBatch.from_arrays(columns, schema=self._schema)

    def take(self, offset: int, size: int) -> pa.RecordBatch:
        """Rows [offset, offset + size) of this reader's share, as one batch."""
        if self._quick:
            self._quick = False
            assert self._table is not None
            return _take_rows(self._table, self.rows[offset : offset + size])
        self._joined()
        if size >= self.group:
            return self._gather(self.rows[offset : offset + size])
        if not self._low <= offset <= offset + size <= self._low + self._taken.num_rows:
            self._low = offset
            self._taken = self._gather(self.rows[offset : offset + self.group])
        return self._taken.slice(offset - self._low, size)


def _take_rows(table: pa.Table, rows: np.ndarray) -> pa.RecordBatch:
    """A few rows of a table still in its row groups' chunks: taken chunk by chunk, then put in
    order (Arrow's take on a chunked table would join all chunks first, a copy of the window)."""
    batches = table.to_batches()
    starts = np.cumsum([0, *(b.num_rows for b in batches)])
    which = np.searchsorted(starts, rows, side="right") - 1
    parts, placed = [], []
    for index in np.unique(which):
        chosen = np.flatnonzero(which == index)
        parts.append(_take(batches[index], rows[chosen] - starts[index]))
        placed.append(chosen)
    joined = _concat(parts)
    order = np.empty(len(rows), dtype=np.int64)
    order[np.concatenate(placed)] = np.arange(len(rows))
    return _take(joined, order)


# Row indices come from the window's permutation and are checked against its row count when the
# window is read (`_checked_rows`), so the take kernel's own per-index check is skipped.
_TAKE = pc.TakeOptions(boundscheck=False)


def _take(batch: pa.RecordBatch, rows: np.ndarray) -> pa.RecordBatch:
    """Those rows of `batch`, in that order (`pc.take` without its per-call Python overhead)."""
    return pc.call_function("take", [batch, _indices(rows)], _TAKE, _memory_pool())


_POOLS: dict[tuple[int, int], ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def _after_fork() -> None:
    global _POOLS_LOCK
    _POOLS_LOCK = threading.Lock()  # a fork while another thread held it must not deadlock the child


os.register_at_fork(after_in_child=_after_fork)


def _read_pool(threads: int) -> ThreadPoolExecutor:
    """A process-wide pool for reading row groups: no threads started per window or per reader
    (a start waits for the new thread to be scheduled, which on a busy machine delays the first
    batch). Keyed by process id: a forked DataLoader worker must not use its parent's threads."""
    key = (os.getpid(), threads)
    with _POOLS_LOCK:
        if key not in _POOLS:
            _POOLS[key] = ThreadPoolExecutor(threads, thread_name_prefix="medcurate-read")
        return _POOLS[key]


def _permutation(n: int, *key: int) -> np.ndarray:
    """A permutation of range(n) fixed by key, identical on every numpy version (raw PCG64 output)."""
    generator = np.random.PCG64(np.random.SeedSequence([k & 0xFFFFFFFF for k in key]))
    keys = generator.random_raw(n)
    order = np.argsort(keys)  # distinct keys have one sorting order, whichever algorithm finds it
    ordered = keys[order]
    if n > 1 and bool((ordered[1:] == ordered[:-1]).any()):
        order = np.argsort(keys, kind="stable")  # ties (about 1 in 10^10 per window): the stable one
    return order


class DatasetReader:
    """Batches of one (rank, worker)'s share of the epoch's global order, as pyarrow RecordBatches.

    `tail` says what happens to the last, incomplete global step: "partial" (default) splits it
    evenly over the ranks, so every sample is read exactly once (the last batches are short);
    "pad" fills it with samples from the start of the epoch order, so every rank gets the same
    number of full batches; "drop" skips it.

    `lanes` interleaves that many independent streams of windows batch by batch (see the module
    docstring and docs/loader.md): a multiple of world_size x num_workers lets each reader decode
    only its own row groups; a batch then draws from `window // lanes` row groups.

    `compact` gathers each batch into buffers of its own (default: when `num_workers` > 0, since
    a DataLoader pickles batches); otherwise batches are zero-copy slices of gathers of a few
    thousand rows, which is cheaper.
    """

    def __init__(
        self,
        version_dir: str | os.PathLike[str],
        columns: Sequence[str] | None = None,
        rank: int = 0,
        world_size: int = 1,
        worker_id: int = 0,
        num_workers: int = 0,
        seed: int = 0,
        epoch: int = 0,
        shuffle: bool = True,
        batch_size: int = 1024,
        *,
        window: int = 8,
        lanes: int = 4,
        tail: Tail = "partial",
        where: RowFilter | Mapping[str, Any] | None = None,
        verify: bool = True,
        prefetch: int = 0,
        compact: bool | None = None,
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside 0..{world_size - 1}")
        if not 0 <= worker_id < max(num_workers, 1):
            raise ValueError(f"worker_id {worker_id} is outside 0..{max(num_workers, 1) - 1}")
        if batch_size < 1 or window < 1 or lanes < 1:
            raise ValueError("batch_size, window and lanes must be at least 1")
        if tail not in _TAILS:
            raise ValueError(f"tail must be one of {_TAILS}")
        self.version_dir = os.fspath(version_dir).rstrip("/")
        self.fs, root = filesystem(self.version_dir)
        self._remote = not isinstance(self.fs, pafs.LocalFileSystem)
        with self.fs.open_input_stream(f"{root}/{MANIFEST}") as handle:
            raw = handle.read()
        self.manifest_sha256 = hashlib.sha256(raw).hexdigest()
        self.manifest: Manifest = Manifest.model_validate_json(raw)
        self.columns = list(columns) if columns else None
        self.rank, self.world_size = rank, world_size
        self.worker_id, self.num_workers = worker_id, num_workers
        self.seed, self.epoch, self.shuffle = seed, epoch, shuffle
        self.batch_size, self.window, self.tail = batch_size, window, tail
        self.lanes, self.lane_window = lanes, max(1, window // lanes)
        self.where = RowFilter.of(where)
        self.verify, self.prefetch = verify, prefetch
        self.compact = num_workers > 0 if compact is None else compact
        self._shards = [_Shard(self.fs, f"{root}/{s.path}", s, verify) for s in self.manifest.shards]
        self._start = 0
        self._last_step: int | None = None
        self._resume_batches: dict[str, int] | None = None
        self._groups = self._row_groups()
        self._masks: dict[int, np.ndarray] = {}
        self._set_order()

    # ----- the global order -----------------------------------------------------------------

    def _row_groups(self) -> np.ndarray:
        """(shard, row group, rows) for every row group, in file order."""
        rows: list[tuple[int, int, int]] = []
        missing = [i for i, s in enumerate(self._shards) if s.info.row_groups is None]
        if missing:  # an older manifest: read those footers (in parallel, for object stores)
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda i: self._shards[i].metadata, missing))
        for index, shard in enumerate(self._shards):
            counts = shard.info.row_groups
            if counts is None:
                counts = [shard.metadata.row_group(g).num_rows for g in range(shard.metadata.num_row_groups)]
            rows += [(index, group, n) for group, n in enumerate(counts)]
        return np.array(rows, dtype=np.int64).reshape(-1, 3)

    def _set_order(self) -> None:
        """Row groups permuted and dealt to lanes; each lane's row groups form windows; the order
        is cut into pieces, each a contiguous range of one window's permuted rows (see `_pieces`)."""
        count = len(self._groups)
        order = _permutation(count, self.seed, self.epoch, 1) if self.shuffle else np.arange(count)
        lanes, size = self.lanes, self.lane_window
        # Window j of lane l is window j * lanes + l; lanes one row group short leave empty ids.
        per_lane = [order[lane::lanes] for lane in range(lanes)]
        rounds = max((-(-len(groups) // size) for groups in per_lane), default=0)
        empty = np.empty(0, dtype=np.int64)
        self._windows = [empty] * (rounds * lanes)
        for lane, groups in enumerate(per_lane):
            for j, start in enumerate(range(0, len(groups), size)):
                self._windows[j * lanes + lane] = groups[start : start + size]
        self._window_rows = np.array([int(self._groups[w, 2].sum()) for w in self._windows], dtype=np.int64)
        self._piece_window, self._piece_low, self._piece_high = self._pieces()
        pieces = len(self._piece_window)
        self._last_piece = np.full(len(self._windows), -1, dtype=np.int64)
        np.maximum.at(self._last_piece, self._piece_window, np.arange(pieces))
        # _ends[p]: samples (after filtering) before piece p; _starts[p]: offset of piece p in its
        # window's (filtered) order. Known for the first _known pieces (all when not filtering).
        self._ends = np.zeros(pieces + 1, dtype=np.int64)
        self._starts = self._piece_low.astype(np.int64) if self.where else self._piece_low
        if self.where:
            self._known = 0
        else:
            self._known = pieces
            np.cumsum(self._piece_high - self._piece_low, out=self._ends[1:])
        self._kept: dict[int, np.ndarray] = {}

    def _pieces(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(window, low, high) of every piece of the unfiltered order, in order.

        Each lane's rows (its windows' permuted rows, one after the other) are cut into lane
        batches of `batch_size`; the order takes lane batch j of lanes 0, 1, ..., L-1, then j + 1,
        as long as every lane has a full batch j. Then the lanes' remaining rows follow, lane after
        lane. Pieces are cut where a lane batch crosses a window's end; consecutive pieces of the
        same window that continue each other are merged (with one lane, a piece is a window)."""
        lanes, batch = self.lanes, self.batch_size
        lane_windows = [np.arange(lane, len(self._windows), lanes) for lane in range(lanes)]
        bounds = [np.concatenate([[0], np.cumsum(self._window_rows[ws])]) for ws in lane_windows]
        full = min(int(b[-1]) // batch for b in bounds)  # rounds in which every lane has a full batch
        cuts = np.arange(0, full * batch + 1, batch, dtype=np.int64)
        columns: list[list[np.ndarray]] = [[], [], [], [], [], []]
        for lane, (ws, b) in enumerate(zip(lane_windows, bounds, strict=True)):
            points = np.union1d(b, cuts[cuts <= b[-1]])
            low, high = points[:-1], points[1:]
            keep = high > low
            low, high = low[keep], high[keep]
            index = np.searchsorted(b, low, side="right") - 1
            second = np.where(low < full * batch, low // batch, np.iinfo(np.int64).max)
            for column, values in zip(
                columns,
                (second, np.full(len(low), lane), low, ws[index], low - b[index], high - b[index]),
                strict=True,
            ):
                column.append(values)
        rounds, lane_of, lane_low, window, low, high = (np.concatenate(c).astype(np.int64) for c in columns)
        order = np.lexsort((lane_low, lane_of, rounds))  # round, then lane, then place in the lane
        window, low, high = window[order], low[order], high[order]
        if len(window) > 1:
            starts = np.flatnonzero(
                np.concatenate([[True], (window[1:] != window[:-1]) | (low[1:] != high[:-1])])
            )
            ends = np.concatenate([starts[1:], [len(window)]]) - 1
            window, low, high = window[starts], low[starts], high[ends]
        # About one piece per batch: int32 (window ids and offsets within a window) keeps them small.
        return window.astype(np.int32), low.astype(np.int32), high.astype(np.int32)

    def set_epoch(self, epoch: int) -> None:
        """Starts epoch `epoch` from its beginning (a new order when shuffling)."""
        self.epoch = epoch
        self._start, self._last_step, self._resume_batches = 0, None, None
        self._set_order()

    def _mask(self, group: int) -> np.ndarray:
        if group not in self._masks:
            shard, index, _ = self._groups[group]
            assert self.where is not None
            self._masks[group] = self.where.mask(self._shards[shard].read(int(index), self.where.columns))
        return self._masks[group]

    def _kept_before(self, w: int) -> np.ndarray:
        """Filtering: how many rows of window w's permuted order before each offset pass the filter."""
        if w not in self._kept:
            n = int(self._window_rows[w])
            order = _permutation(n, self.seed, self.epoch, 2, w) if self.shuffle else np.arange(n)
            keep = np.concatenate([self._mask(int(g)) for g in self._windows[w]])[order]
            if len(self._kept) > 4 * self.lanes:
                self._kept.pop(next(iter(self._kept)))
            self._kept[w] = np.concatenate([[0], np.cumsum(keep)])
        return self._kept[w]

    def _count_to(self, piece: int) -> None:
        """Counts the filtered samples of pieces up to `piece` (reads only the filter columns)."""
        while self._known <= piece:
            p = self._known
            kept = self._kept_before(int(self._piece_window[p]))
            self._starts[p] = kept[self._piece_low[p]]
            self._ends[p + 1] = self._ends[p] + kept[self._piece_high[p]] - self._starts[p]
            self._known += 1

    def _covers(self, position: int) -> bool:
        """Whether the epoch has a sample at this position (counts pieces lazily when filtering)."""
        while self._ends[self._known] <= position and self._known < len(self._piece_window):
            self._count_to(self._known)
        return position < self._ends[self._known]

    def _piece_of(self, positions: np.ndarray) -> np.ndarray:
        """The piece of each (covered) position."""
        return np.searchsorted(self._ends[: self._known + 1], positions, side="right") - 1

    @property
    def num_samples(self) -> int:
        """Samples in one epoch (after filtering), over all ranks and workers."""
        self._count_to(len(self._piece_window) - 1)
        return int(self._ends[self._known])

    @property
    def num_rows(self) -> int:
        """Rows this reader yields from its current start to the end of the epoch."""
        return sum(len(p) for p in self._positions())

    def _window_order(self, w: int) -> np.ndarray:
        """Rows of window w (indices into its row groups, concatenated), in epoch order, filtered."""
        n = int(self._window_rows[w])
        order = _permutation(n, self.seed, self.epoch, 2, w) if self.shuffle else np.arange(n)
        if self.where:
            keep = np.concatenate([self._mask(int(g)) for g in self._windows[w]])
            order = order[keep[order]]
        return order

    def _read_windows(self, windows: Sequence[int]) -> list[pa.Table]:
        """These windows' rows (selected columns), all their row groups read in parallel (more so
        on object stores)."""
        columns = self.columns or self.manifest_columns()

        def read(group: int) -> pa.Table:
            shard, index, _ = self._groups[group]
            return self._shards[shard].read(int(index), columns)

        groups = [int(g) for w in windows for g in self._windows[w]]
        threads = _READ_THREADS if self._remote else os.cpu_count() or 1
        if min(threads, len(groups)) < 2:
            tables = list(map(read, groups))
        else:
            # This thread reads the first row group itself rather than waiting idle for the pool.
            pending = [_read_pool(threads).submit(read, group) for group in groups[1:]]
            try:
                first = read(groups[0])
            except BaseException:
                for future in pending:
                    future.cancel()
                raise
            tables = [first, *(future.result() for future in pending)]
        split = np.cumsum([0, *(len(self._windows[w]) for w in windows)])
        return [pa.concat_tables(tables[a:b]) for a, b in itertools.pairwise(split)]

    def _checked_rows(self, w: int, table: pa.Table) -> None:
        """The rows decoded for window w must be the rows the manifest counts: the order (and the
        gathers, which skip bounds checks) index them."""
        if table.num_rows != int(self._window_rows[w]):
            raise ShardIntegrityError(
                f"window {w} decoded {table.num_rows} rows, its row groups have {int(self._window_rows[w])} "
                "in the manifest"
            )

    def manifest_columns(self) -> list[str]:
        return list(self._shards[0].metadata.schema.to_arrow_schema().names)

    # ----- splitting the order into batches --------------------------------------------------

    def _step_positions(self, step: int) -> np.ndarray | None:
        """This rank's positions in global step `step` (counted from the resume point); None past the end."""
        span = self.batch_size * self.world_size
        low = self._start + step * span
        if not self._covers(low):
            return None
        mine = np.arange(low + self.rank * self.batch_size, low + (self.rank + 1) * self.batch_size)
        if self._covers(low + span - 1):
            return mine
        total = self.num_samples
        if self.tail == "drop":
            return None
        if self.tail == "pad":
            return mine % total
        left = total - low
        sizes = [left // self.world_size + (r < left % self.world_size) for r in range(self.world_size)]
        first = low + sum(sizes[: self.rank])
        return np.arange(first, first + sizes[self.rank])

    def _first_step(self) -> int:
        """This reader's first step (counted from the resume point)."""
        step = self.worker_id
        if self._resume_batches is not None:
            step += max(self.num_workers, 1) * self._resume_batches.get(self._worker_key(), 0)
        return step

    def _steps(self) -> Iterator[tuple[int, np.ndarray]]:
        workers = max(self.num_workers, 1)
        step = self._first_step()
        while (positions := self._step_positions(step)) is not None:
            yield step, positions
            step += workers

    def _positions(self) -> Iterator[np.ndarray]:
        for _, positions in self._steps():
            yield positions

    def _split(self, step: int, positions: np.ndarray) -> Iterator[_Part]:
        """A step's positions as parts, one per piece they fall in."""
        if not len(positions):  # an empty share of the last step: nothing to read, but it counts
            yield _Part(step, -1, positions, True, 0)
            return
        self._covers(int(positions.max()))
        pieces = self._piece_of(positions)
        runs = np.split(np.arange(len(positions)), np.flatnonzero(np.diff(pieces)) + 1)
        for index, run in enumerate(runs):
            p = int(pieces[run[0]])
            offsets = positions[run] - self._ends[p] + self._starts[p]
            low = self._start + step * self.batch_size * self.world_size
            yield _Part(step, int(self._piece_window[p]), offsets, index == len(runs) - 1, low)

    def _parts(self) -> Iterator[_Part]:
        """This reader's batches in consumption order, as parts that each lie in one window.

        Whole steps are laid out in chunks, vectorised; a batch crossing a piece's end and the
        epoch's last step go through `_split`. Chunks start small so that the first batch does
        not wait for (filtered) counting far ahead."""
        stride, span, size = max(self.num_workers, 1), self.batch_size * self.world_size, self.batch_size
        step, chunk = self._first_step(), 4
        columns = np.arange(size, dtype=np.int64)
        while True:
            steps = step + stride * np.arange(chunk, dtype=np.int64)
            lows = self._start + steps * span
            self._covers(int(lows[-1] + span - 1))
            whole = int(np.searchsorted(lows + span - 1, self._ends[self._known]))  # steps fully inside
            if whole:
                mine = lows[:whole] + self.rank * size
                pieces = self._piece_of(mine)
                inside = mine + size <= self._ends[pieces + 1]
                offsets = (mine - self._ends[pieces] + self._starts[pieces])[:, None] + columns
                windows = self._piece_window[pieces]
                for i in range(whole):
                    s = int(steps[i])
                    if inside[i]:
                        yield _Part(s, int(windows[i]), offsets[i], True, int(lows[i]))
                    else:
                        positions = self._step_positions(s)
                        assert positions is not None
                        yield from self._split(s, positions)
            if whole < chunk:  # the epoch ends within this chunk: its last steps one by one
                step = int(steps[whole])
                while (positions := self._step_positions(step)) is not None:
                    yield from self._split(step, positions)
                    step += stride
                return
            step = int(steps[-1]) + stride
            chunk = min(chunk * 2, 1024)

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        """Walks this reader's parts; a window is read when its first part is due, together with
        the other windows whose parts are already planned (they are due within the next few
        batches: the lanes' windows of the same round), and dropped after its last part."""
        self._last_step = None
        parts = self._parts()
        planned: collections.deque[_Part] = collections.deque()
        pending: dict[int, list[np.ndarray]] = {}  # planned offsets of windows not read yet
        pending_low: dict[int, int] = {}  # where each of those windows' first planned part starts
        opened: dict[int, _Opened] = {}
        done = False
        depth = int(self.prefetch)
        executor = ThreadPoolExecutor(depth, thread_name_prefix="medcurate-loader") if depth else None
        loading: dict[int, Future[list[pa.Table]]] = {}

        def plan(until: int) -> None:
            """Plans parts until one starts at or beyond global position `until`."""
            nonlocal done
            while not done:
                part = next(parts, None)
                if part is None:
                    done = True
                    return
                planned.append(part)
                if len(part.offsets):
                    if part.window in opened:
                        opened[part.window].extend(part.offsets)
                    else:
                        pending.setdefault(part.window, []).append(part.offsets)
                        pending_low.setdefault(part.window, part.low)
                if part.low >= until:
                    return

        def window_end(w: int) -> int:
            last = int(self._last_piece[w])
            self._count_to(last)
            return int(self._ends[last + 1])

        def open_windows(first: bool) -> None:
            due = planned[0].window
            end = window_end(due)
            plan(end)
            chosen = [due]
            if not first:  # the windows due before this one ends, read together (in parallel)
                chosen += [w for w in pending if w != due and pending_low[w] < end]
            # Every part of the chosen windows planned: a window is dropped after its last part,
            # never before a later part of it is known (which would read it again).
            last = max(window_end(w) for w in chosen)
            plan(last)
            waiting = [w for w in chosen if w not in loading]
            tables = dict(zip(waiting, self._read_windows(waiting) if waiting else [], strict=True))
            for w in chosen:
                table = tables[w] if w in tables else loading.pop(w).result()[0]
                self._checked_rows(w, table)
                order = self._window_order(w)
                rows = order[np.concatenate(pending.pop(w))]
                del pending_low[w]
                group = 1 if self.compact else _GATHER_ROWS
                opened[w] = _Opened(_Window(table, rows, group, quick=first), order)
            if executor is not None:
                plan(last + 1)
                ahead = [w for w in pending if w not in opened and w not in loading][: depth - len(loading)]
                for w in ahead:
                    loading[w] = executor.submit(self._read_windows, [w])

        batch_parts: list[pa.RecordBatch] = []
        first = True
        try:
            while True:
                if not planned:
                    plan(-1)
                    if not planned:
                        break
                part = planned[0]
                if len(part.offsets) and part.window not in opened:
                    open_windows(first)
                planned.popleft()
                if len(part.offsets):
                    entry = opened[part.window]
                    batch_parts.append(entry.window.take(entry.taken, len(part.offsets)))
                    entry.taken += len(part.offsets)
                    if entry.taken == len(entry.window.rows):
                        del opened[part.window]
                if part.last:
                    self._last_step = part.step
                    if batch_parts:
                        batch = _concat(batch_parts)
                        batch_parts = []
                        # Until the first batch is out, windows are read one at a time: a resumed
                        # first batch that straddles a window's end waits for two, not a round.
                        first = False
                        yield batch
        finally:
            if executor is not None:
                executor.shutdown(wait=True, cancel_futures=True)
            parts.close()

    # ----- resuming ------------------------------------------------------------------------------

    def _worker_key(self) -> str:
        return f"{self.rank}/{self.world_size}:{self.worker_id}/{max(self.num_workers, 1)}:{self.batch_size}"

    def _order_key(self) -> dict[str, Any]:
        return {
            "dataset": self.manifest.dataset,
            "version": self.manifest.version,
            "manifest_sha256": self.manifest_sha256,
            "seed": self.seed,
            "shuffle": self.shuffle,
            "window": self.window,
            "where": self.where.to_json() if self.where else None,
            # With lanes, lane batches of `batch_size` rows are interleaved: the order depends on it.
            **({"lanes": self.lanes, "batch_size": self.batch_size} if self.lanes > 1 else {}),
        }

    def state_dict(self, batches: int | None = None) -> dict[str, Any]:
        """Where the job is in the epoch, JSON-serialisable.

        `samples_consumed` counts positions of the global order the whole job has consumed: this
        reader's last batch and every global step before it (ranks move in lockstep). Pass
        `batches`, the number of batches this rank's training loop consumed since the start or
        last resume, when a plain DataLoader with workers hides the readers from you.
        """
        span = self.batch_size * self.world_size
        workers = max(self.num_workers, 1)
        done = (self._resume_batches or {}).get(self._worker_key(), 0)
        if self._last_step is not None:
            done = (self._last_step - self.worker_id) // workers + 1
        last = self.worker_id + (done - 1) * workers if done else -1
        steps = batches if batches is not None else last + 1
        consumed = self._start + steps * span
        if steps and not self._covers(consumed - 1):
            consumed = self.num_samples
        return {
            "format": STATE_FORMAT,
            **self._order_key(),
            "epoch": self.epoch,
            "samples_consumed": consumed,
            "start": self._start,
            "worker_batches": {self._worker_key(): done} if batches is None else {},
        }

    def load_state_dict(self, state: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> None:
        """Continues after the saved position, with any number of ranks, workers or batch size.

        Accepts one reader's state, a list of them (e.g. every worker's), or a torchdata
        StatefulDataLoader state dict; the furthest position wins. A reader whose exact (rank,
        worker, batch size) layout is in the states resumes its own stream exactly, which is
        what a StatefulDataLoader with the same number of workers needs.
        """
        states = _collect_states(state)
        if not states:
            raise ResumeError("no loader state found in what was given")
        mine = self._order_key()
        for saved in states:
            for key in [*mine, *(k for k in ("lanes", "batch_size") if k in saved and k not in mine)]:
                if saved.get(key) != mine.get(key):
                    raise ResumeError(
                        f"saved state has {key}={saved.get(key)!r}, this reader {mine.get(key)!r}: "
                        "the remaining samples would not be exact"
                    )
        epochs = {s["epoch"] for s in states}
        if len(epochs) != 1:
            raise ResumeError(f"states of different epochs: {sorted(epochs)}")
        if self.epoch != states[0]["epoch"]:
            self.set_epoch(states[0]["epoch"])
        starts = {s["start"] for s in states}
        layouts: dict[str, int] = {}
        for saved in states:
            for key, count in saved.get("worker_batches", {}).items():
                layouts[key] = max(layouts.get(key, 0), count)
        if len(starts) == 1 and self._worker_key() in layouts:
            self._start = starts.pop()
            self._resume_batches = layouts
        else:
            self._start = max(s["samples_consumed"] for s in states)
            self._resume_batches = None
        self._last_step = None


@dataclass
class _Part:
    """Part of one batch that lies in one window: `offsets` into the window's (filtered) order."""

    step: int
    window: int
    offsets: np.ndarray
    last: bool  # ends the batch of this step
    low: int  # the global position where the step starts


class _Opened:
    """A window being consumed: its rows for this reader, extended as later parts are planned."""

    def __init__(self, window: _Window, order: np.ndarray) -> None:
        self.window, self.order, self.taken = window, order, 0

    def extend(self, offsets: np.ndarray) -> None:
        self.window.rows = np.concatenate([self.window.rows, self.order[offsets]])


def _collect_states(state: Any) -> list[Mapping[str, Any]]:
    """Reader states found in a state, a list of states, or a StatefulDataLoader's nested dict."""
    if isinstance(state, Mapping):
        if state.get("format") == STATE_FORMAT and "samples_consumed" in state:
            return [state]
        return [found for value in state.values() for found in _collect_states(value)]
    if isinstance(state, list | tuple):
        return [found for value in state for found in _collect_states(value)]
    return []


class LazyImages(Sequence):
    """A batch's encoded images, decoded with Pillow only when an item is read."""

    def __init__(self, batch: pa.RecordBatch, column: str = "image_bytes") -> None:
        self._values = batch.column(column)

    def __len__(self) -> int:
        return len(self._values)

    def __getitem__(self, index: int) -> Any:  # type: ignore[override]
        from PIL import Image

        value = self._values[index].as_py()
        return None if value is None else Image.open(io.BytesIO(value))


def decode_images(batch: pa.RecordBatch, column: str = "image_bytes") -> LazyImages:
    """Images of a batch, decoded on access: skipped images never cost a decode."""
    return LazyImages(batch, column)
