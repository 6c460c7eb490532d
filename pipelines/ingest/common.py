"""What every reader shares: the opened input, the reason-coded rejection, sample and dead-letter builders."""

from __future__ import annotations

import gzip
import io
import os
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from medcurate.schemas.events import DeadLetter
from medcurate.schemas.sample import new_sample, sample_id

STAGE = "ingest"
HEAD_BYTES = 8192

Item = dict[str, Any] | DeadLetter
SkipFn = Callable[[str], None]


class Rejected(Exception):
    """A reader's verdict that an input (or one record) cannot become a sample, with a reason code."""

    def __init__(self, reason: str, cause: BaseException | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error_type = type(cause).__name__ if cause is not None else None


@dataclass(frozen=True)
class Source:
    """One input file: its URI, size and first bytes (decompressed when the file is gzip)."""

    uri: str
    size: int | None
    gzipped: bool
    head: bytes

    @classmethod
    def probe(cls, uri: str) -> Source:
        try:
            size: int | None = FileSystems.match([uri])[0].metadata_list[0].size_in_bytes
        except (IndexError, OSError):
            size = None
        with _open_raw(uri) as stream:
            raw = stream.read(HEAD_BYTES)
        if raw[:2] != b"\x1f\x8b":
            return cls(uri, size, False, raw)
        try:
            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(raw, HEAD_BYTES)
        except zlib.error as error:
            raise Rejected("corrupt_gzip", error) from None
        return cls(uri, size, True, head)

    @property
    def extension(self) -> str:
        name = self.uri.lower().rsplit("/", 1)[-1]
        if self.gzipped and name.endswith(".gz"):
            name = name[:-3]
        return os.path.splitext(name)[1]

    def open_raw(self) -> BinaryIO:
        return _open_raw(self.uri)

    def open(self) -> BinaryIO:
        """The file's bytes, decompressed when gzip (never the whole file in memory)."""
        raw = self.open_raw()
        return gzip.GzipFile(fileobj=raw, mode="rb") if self.gzipped else raw  # type: ignore[return-value]

    def read_all(self, limit: int) -> bytes:
        """The whole (decompressed) file, or `too_large` past `limit` bytes: reads at most limit + 1."""
        if not self.gzipped and self.size is not None and self.size > limit:
            raise Rejected("too_large")
        try:
            with self.open() as stream:
                data = stream.read(limit + 1)
        except (EOFError, zlib.error, gzip.BadGzipFile) as error:
            raise Rejected("corrupt_gzip", error) from None
        if len(data) > limit:
            raise Rejected("too_large")
        return data


def _open_raw(uri: str) -> BinaryIO:
    return FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED)


def make_sample(uri: str, record: int | str | None, **fields: Any) -> dict[str, Any]:
    """A sample of record `record` of `uri` (None for single-record files), with its stable id."""
    source_uri = uri if record is None else f"{uri}#record={record}"
    return new_sample(id=sample_id(uri, record or 0), source_uri=source_uri, **fields)


def dead_letter(
    uri: str, record: int | str | None, reason: str, error: BaseException | None = None
) -> DeadLetter:
    source_uri = uri if record is None else f"{uri}#record={record}"
    error_type = error.error_type if isinstance(error, Rejected) else type(error).__name__ if error else None
    record_id = None if record is None else sample_id(uri, record)
    return DeadLetter(STAGE, reason, source_uri, record_id, error_type)


def bounded_lines(stream: io.BufferedIOBase | BinaryIO, limit: int) -> Iterator[bytes | None]:
    """Lines of at most `limit` bytes; a longer line is skipped unread and yields None in its place."""
    while True:
        line = stream.readline(limit + 1)
        if not line:
            return
        if len(line) > limit and not line.endswith(b"\n"):
            while True:
                rest = stream.readline(1 << 20)
                if not rest or rest.endswith(b"\n"):
                    break
            yield None
        else:
            yield line
