"""What every reader shares: the opened input, the reason-coded rejection, sample and dead-letter builders."""

from __future__ import annotations

import gzip
import io
import json
import os
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from medcurate.schemas.events import DeadLetter, Drop
from medcurate.schemas.sample import new_sample, sample_id

STAGE = "ingest"
HEAD_BYTES = 8192

Item = dict[str, Any] | DeadLetter | Drop
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


def parse_json(data: bytes | str, max_depth: int, malformed: str = "malformed_json") -> Any:
    """A JSON value nested at most `max_depth` deep: `json_too_deep` past it, `malformed` (the
    caller's reason) when it is not JSON, `not_utf8` when its bytes are not UTF-8."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise Rejected("not_utf8", error) from None
    try:
        value = json.loads(data)
    except RecursionError as error:
        raise Rejected("json_too_deep", error) from None
    except ValueError as error:
        raise Rejected(malformed, error) from None
    if json_depth(value, max_depth) > max_depth:
        raise Rejected("json_too_deep")
    return value


def json_depth(value: Any, limit: int) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0), counted without recursion and
    stopping once past `limit`."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


def _open_raw(uri: str) -> BinaryIO:
    return FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED)


def display_uri(uri: str) -> str:
    """The URI as recorded in samples and events: valid UTF-8 whatever the file name's bytes.

    A local name that is not UTF-8 reaches Python with surrogate escapes, which neither Parquet,
    JSON writers nor Beam's string coder accept; its undecodable bytes are written `%XX` (as in
    file URIs), everything else is kept as it is.
    """
    try:
        uri.encode("utf-8")
    except UnicodeEncodeError:
        raw = uri.encode("utf-8", "surrogateescape")
        return "".join(f"%{byte:02X}" if isinstance(byte, int) else byte for byte in _split_undecodable(raw))
    return uri


def _split_undecodable(raw: bytes) -> Iterator[str | int]:
    """Runs of valid UTF-8 as text, every other byte as an int."""
    while raw:
        try:
            yield raw.decode("utf-8")
            return
        except UnicodeDecodeError as error:
            yield raw[: error.start].decode("utf-8")
            yield from raw[error.start : error.end]
            raw = raw[error.end :]


def make_sample(uri: str, record: int | str | None, **fields: Any) -> dict[str, Any]:
    """A sample of record `record` of `uri` (None for single-record files), with its stable id."""
    uri = display_uri(uri)
    source_uri = uri if record is None else f"{uri}#record={record}"
    return new_sample(id=sample_id(uri, record or 0), source_uri=source_uri, **fields)


def dead_letter(
    uri: str, record: int | str | None, reason: str, error: BaseException | None = None
) -> DeadLetter:
    uri = display_uri(uri)
    source_uri = uri if record is None else f"{uri}#record={record}"
    error_type = error.error_type if isinstance(error, Rejected) else type(error).__name__ if error else None
    record_id = None if record is None else sample_id(uri, record)
    return DeadLetter(STAGE, reason, source_uri, record_id, error_type)


def skipped(uri: str, reason: str) -> Drop:
    """An input listed but deliberately not read (empty, hidden, special file...), with its reason."""
    return Drop(STAGE, reason, display_uri(uri))


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
