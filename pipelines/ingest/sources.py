"""The pure core of ingestion: find input files, detect what each one is by content, read it.

`read_source` never raises on bad input: every file or record that cannot be read becomes a
`DeadLetter` with a reason code and at most an exception class name, after whatever records
before it were read. Everything goes through Beam's `FileSystems`, so gs:// and s3:// work.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence

from apache_beam.io.filesystems import FileSystems

from medcurate.pipelines.config import IngestConfig
from medcurate.pipelines.ingest import clinical, images, web
from medcurate.pipelines.ingest.common import STAGE, Item, Rejected, SkipFn, Source, dead_letter
from medcurate.pipelines.stage import count

_GLOB_CHARS = re.compile(r"[*?\[]")


class NoInputError(ValueError):
    """An input pattern that matched no file: almost always a typo, so the run stops."""


def expand_inputs(patterns: Sequence[str]) -> list[str]:
    """Files, folders (recursively) and globs into a sorted list of file URIs, without duplicates."""
    found: set[str] = set()
    for pattern in patterns:
        paths = _match(pattern)
        if not paths:
            raise NoInputError(f"input pattern matched no file: {pattern}")
        found.update(paths)
    return sorted(found)


def _match(pattern: str) -> list[str]:
    local = "://" not in pattern
    if local and os.path.isdir(pattern):
        pattern = FileSystems.join(pattern, "**")
    elif not local and not _GLOB_CHARS.search(pattern) and pattern.endswith("/"):
        pattern = pattern + "**"
    matched = [m.path for m in FileSystems.match([pattern])[0].metadata_list]
    if not matched and not local and not _GLOB_CHARS.search(pattern):
        # An object-store "folder" given without its trailing slash.
        matched = [m.path for m in FileSystems.match([pattern.rstrip("/") + "/**"])[0].metadata_list]
    return [
        path
        for path in matched
        if not (local and os.path.isdir(path)) and not os.path.basename(path).startswith(".")
    ]


_IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"BM", "bmp"),
)
_IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".gif", ".tif", ".tiff", ".webp", ".bmp"}
_HTML_START = re.compile(rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html|head|body|meta|title)\b", re.I | re.S)
_HTML_TAG = re.compile(rb"<(html|body|div|p|article)\b[^>]*>", re.I)
_FHIR_HINT = re.compile(rb'"resourceType"\s*:')


def detect_kind(source: Source) -> str:
    """What a file is, by its first bytes, then its extension: one of the reader names below."""
    head, ext = source.head, source.extension
    if head.startswith((b"WARC/", b"filedesc://")):
        return "warc"
    if head[128:132] == b"DICM":  # before images: a DICOM preamble may itself look like a TIFF header
        return "dicom"
    if any(head.startswith(magic) for magic, _ in _IMAGE_MAGIC) or (
        head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    ):
        return "image"
    body = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if b"\x00" in head:
        if ext in {".dcm", ".dicom"}:
            return "dicom"
        return "image" if ext in _IMAGE_EXTENSIONS else "binary"
    if body.startswith((b"{", b"[")):
        if _FHIR_HINT.search(head):
            return "fhir_ndjson" if _is_line_delimited(body, ext) else "fhir"
        return "jsonl" if _is_line_delimited(body, ext) else "json"
    if _HTML_START.match(body) or (ext in {".html", ".htm", ".xhtml"} and _HTML_TAG.search(body)):
        return "html"
    if ext in {".csv", ".tsv"}:
        return "csv"
    if ext in _IMAGE_EXTENSIONS or ext in {".dcm", ".dicom", ".warc", ".arc"}:
        return "binary"
    return "text"


def _is_line_delimited(body: bytes, ext: str) -> bool:
    if ext in {".ndjson", ".jsonl"}:
        return True
    if ext == ".json":
        return False
    first, newline, rest = body.partition(b"\n")
    return bool(newline) and first.rstrip().endswith(b"}") and rest.lstrip().startswith(b"{")


def read_source(uri: str, config: IngestConfig, on_skip: SkipFn | None = None) -> Iterator[Item]:
    """Every sample and dead letter of one input file, each counted once as `read`.

    `on_skip(reason)` is told of records that are not documents at all (a WARC request record,
    a non-HTML response): they are neither samples nor failures.
    """
    for item in _read_guarded(uri, config, on_skip or _count_skip):
        count("read")
        yield item


def _count_skip(reason: str) -> None:
    count(f"skipped:{STAGE}/{reason}")


def _read_guarded(uri: str, config: IngestConfig, on_skip: SkipFn) -> Iterator[Item]:
    try:
        source = Source.probe(uri)
        yield from _READERS[detect_kind(source)](source, config, on_skip)
    except Rejected as rejected:
        yield dead_letter(uri, None, rejected.reason, rejected)
    except MemoryError as error:
        yield dead_letter(uri, None, "too_large", error)
    except Exception as error:  # any other failure on input data: dead-letter it, keep the run going
        yield dead_letter(uri, None, "read_error", error)


def _unsupported(source: Source, config: IngestConfig, on_skip: SkipFn) -> Iterator[Item]:
    raise Rejected("unsupported_type")


Reader = Callable[[Source, IngestConfig, SkipFn], Iterator[Item]]
_READERS: dict[str, Reader] = {
    "warc": web.read_warc,
    "html": web.read_html,
    "image": images.read_image,
    "dicom": images.read_dicom,
    "text": clinical.read_text_note,
    "jsonl": clinical.read_jsonl_notes,
    "json": clinical.read_json_notes,
    "csv": clinical.read_csv_notes,
    "fhir": clinical.read_fhir_json,
    "fhir_ndjson": clinical.read_fhir_ndjson,
    "binary": _unsupported,
}
