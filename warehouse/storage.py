"""Small file helpers over Beam's FileSystems, so outputs can live on local disk, gs:// or s3://."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from functools import cache
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

CHUNK = 8 * 1024 * 1024


@cache
def _filesystems() -> Any:
    """Beam's FileSystems, imported on first use: Beam costs about a second at start-up, and commands
    that never touch an output (`deid text`) validate the same configuration."""
    from apache_beam.io.filesystems import FileSystems

    return FileSystems


def is_remote(path: str) -> bool:
    """A `scheme://` path (gs://, s3://...): only Beam's FileSystems reach it, never pathlib or open()."""
    return "://" in path and not path.startswith("file://")


def join(*parts: str) -> str:
    """Joins with the path's own filesystem: pathlib would turn `gs://bucket` into `gs:/bucket`."""
    return _filesystems().join(*parts)


def open_read(path: str):
    """A binary, seekable reader for a file on any Beam filesystem."""
    return _filesystems().open(path)


def exists(path: str) -> bool:
    return _filesystems().exists(path)


def ensure_dir(path: str) -> None:
    """Creates the folder unless it exists; safe when several workers create it at the same time."""
    if not _filesystems().exists(path):
        try:
            _filesystems().mkdirs(path)
        except OSError:  # Beam's errors derive from it: another worker was first
            if not _filesystems().exists(path):
                raise


def read_text(path: str) -> str:
    with _filesystems().open(path) as handle:
        return handle.read().decode()


def write_text(path: str, text: str) -> None:
    ensure_dir(_filesystems().split(path)[0])
    with _filesystems().create(path) as handle:
        handle.write(text.encode())


def write_text_atomic(path: str, text: str) -> None:
    """Writes a whole file or nothing: a crash or a full disk never leaves a torn or empty file.

    Atomic on a local filesystem (rename replaces); on object stores the rename is copy + delete.
    """
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        write_text(temporary, text)
        _filesystems().rename([temporary], [path])
    except BaseException:
        if _filesystems().exists(temporary):
            _filesystems().delete([temporary])
        raise


def concatenate(sources: list[str], target: str) -> None:
    """Streams the files, in order, into the one file `target`; either side on any filesystem
    (a remote file copied to local disk, local files gathered into a remote one)."""
    with _filesystems().create(target) as sink:
        for source in sources:
            with open_read(source) as handle:
                shutil.copyfileobj(handle, sink, CHUNK)


def delete_tree(path: str) -> None:
    """Removes a folder and everything in it (local) or every object under the prefix (object stores)."""
    below = glob(join(path, "**"))
    if below:
        _filesystems().delete(below)
    if _filesystems().exists(path):
        _filesystems().delete([path])


def move(source: str, destination: str) -> None:
    ensure_dir(_filesystems().split(destination)[0])
    _filesystems().rename([source], [destination])


def glob(pattern: str) -> list[str]:
    return sorted(m.path for result in _filesystems().match([pattern]) for m in result.metadata_list)


def children(folder: str) -> list[str]:
    """Names directly under a folder, empty subfolders included where the filesystem has folders.

    On object stores (`scheme://`), the first part of each object name below the prefix.
    """
    if "://" in folder:
        prefix = folder.rstrip("/") + "/"
        return sorted({path.removeprefix(prefix).split("/")[0] for path in glob(prefix + "**")})
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def size_and_sha256(path: str) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with _filesystems().open(path) as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def row_group_batches(
    parquet: pq.ParquetFile, batch_rows: int, columns: list[str] | None = None
) -> Iterator[pa.RecordBatch]:
    """A Parquet file's record batches, read one row group at a time: over a whole file,
    `iter_batches` reads far ahead (a 270 MB file of 2,000-row groups held 263 MB of Arrow memory
    at once), one row group at a time holds that row group."""
    for group in range(parquet.metadata.num_row_groups):
        yield from parquet.iter_batches(batch_rows, row_groups=[group], columns=columns)
