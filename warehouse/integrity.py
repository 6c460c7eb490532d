"""Checksums of a Parquet shard's parts, so a reader can verify exactly the bytes it decodes.

A whole-shard SHA-256 can only be checked after reading the whole file, which holds back a trainer's
first batch and forces reading columns it never uses. At publish we therefore also record the
SHA-256 of the footer and of every column chunk (per row group, per leaf column); the loader checks
each chunk as it reads it. Digests are SHA-256 cut to 128 bits (32 hex digits) to keep manifests
small; that is still far beyond accidental corruption.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

import pyarrow as pa
import pyarrow.parquet as pq

DIGEST_HEX = 32
_MAGIC = b"PAR1"


class RandomAccess(Protocol):
    def seek(self, offset: int, whence: int = 0) -> int: ...
    def read(self, size: int = -1) -> bytes: ...


def digest(data: bytes | memoryview | pa.Buffer) -> str:
    return hashlib.sha256(data).hexdigest()[:DIGEST_HEX]


def chunk_range(metadata: pq.FileMetaData, row_group: int, leaf: int) -> tuple[int, int]:
    """(offset, length) of one column chunk, computed as the Parquet C++ reader does."""
    column = metadata.row_group(row_group).column(leaf)
    start = column.data_page_offset
    dictionary = column.dictionary_page_offset
    if column.has_dictionary_page and dictionary and 0 < dictionary < start:
        start = dictionary
    return start, column.total_compressed_size


def footer_length(tail8: bytes) -> int:
    if len(tail8) != 8 or tail8[4:] != _MAGIC:
        raise ValueError("not a Parquet file (no PAR1 footer)")
    return int.from_bytes(tail8[:4], "little")


def metadata_from_footer(footer: bytes | pa.Buffer) -> pq.FileMetaData:
    """Parses the footer bytes (metadata, length, magic) without the rest of the file."""
    return pq.read_metadata(pa.BufferReader(_MAGIC + bytes(footer)))


def shard_checksums(handle: RandomAccess, size: int) -> dict:
    """Row counts per row group, the footer digest and one digest per column chunk."""
    handle.seek(size - 8)
    length = footer_length(handle.read(8))
    handle.seek(size - 8 - length)
    footer = handle.read(length + 8)
    metadata = metadata_from_footer(footer)
    chunks: list[list[str]] = []
    for group in range(metadata.num_row_groups):
        digests = []
        for leaf in range(metadata.num_columns):
            start, length = chunk_range(metadata, group, leaf)
            handle.seek(start)
            digests.append(digest(handle.read(length)))
        chunks.append(digests)
    return {
        "row_groups": [metadata.row_group(g).num_rows for g in range(metadata.num_row_groups)],
        "footer_sha256": digest(footer),
        "chunk_sha256": chunks,
    }
