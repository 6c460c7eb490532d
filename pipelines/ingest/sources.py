"""The pure core of ingestion: find input files, detect what each one is by content, read it.

`read_source` never raises on bad input: every file or record that cannot be read becomes a
`DeadLetter` with a reason code and at most an exception class name, after whatever records
before it were read. Everything goes through Beam's `FileSystems`, so gs:// and s3:// work.
"""

from __future__ import annotations

import errno
import fnmatch
import math
import os
import re
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from apache_beam.io.filesystems import FileSystems

from medcurate.pipelines.config import IngestConfig
from medcurate.pipelines.ingest import clinical, images, jats, web
from medcurate.pipelines.ingest.common import (
    STAGE,
    Item,
    Rejected,
    SkipFn,
    Source,
    dead_letter,
    display_uri,
    skipped,
)
from medcurate.pipelines.stage import count

_GLOB_CHARS = re.compile(r"[*?\[]")


class NoInputError(ValueError):
    """An input pattern that matched no file: almost always a typo, so the run stops."""


@dataclass(frozen=True)
class InputPath:
    """One path the input listing found: read it, unless `skip` says why it is not read.

    `uri` may hold surrogate escapes (a local name that is not UTF-8): `raw` is its bytes-safe form
    for carrying between processes, `display_uri` the form written to samples and events.
    """

    uri: str
    skip: str | None = None

    @property
    def raw(self) -> bytes:
        return self.uri.encode("utf-8", "surrogateescape")

    @classmethod
    def from_raw(cls, raw: bytes, skip: str | None = None) -> InputPath:
        return cls(raw.decode("utf-8", "surrogateescape"), skip or None)


def list_inputs(patterns: Sequence[str]) -> list[InputPath]:
    """Every path that files, folders (recursively) and globs name, sorted, each once.

    Nothing found is left out: hidden files, empty files, links that lead nowhere or in a loop and
    special files (FIFOs, sockets, devices) are listed with the reason they are skipped, so that
    every input is accounted for. A pattern matching nothing at all is an error (a typo).
    """
    found: dict[str, InputPath] = {}
    for pattern in patterns:
        paths = list(match_pattern(pattern))
        if not paths:
            raise NoInputError(f"input pattern matched no file: {display_uri(pattern)}")
        for path in paths:
            found.setdefault(path.uri, path)
    return [found[uri] for uri in sorted(found)]


def match_pattern(pattern: str) -> Iterator[InputPath]:
    """The paths one file, folder or glob names, as `list_inputs` lists them, found lazily (a
    folder is walked as it is read, never listed whole)."""
    return _match_local(pattern) if "://" not in pattern else iter(_match_remote(pattern))


def check_patterns(patterns: Sequence[str]) -> None:
    """Fails fast on a pattern that matches nothing (a typo), stopping at each one's first path."""
    for pattern in patterns:
        if next(match_pattern(pattern), None) is None:
            raise NoInputError(f"input pattern matched no file: {display_uri(pattern)}")


# Line-delimited inputs larger than `ingest.part_bytes` are read by up to this many workers at once.
MAX_PARTS = 16
# Records are dealt to a file's parts in blocks of this many (part k takes every n-th block).
PART_BLOCK = 64
_SPLITTABLE = (".jsonl", ".ndjson", ".csv", ".tsv")


def part_count(path: InputPath, part_bytes: int) -> int:
    """How many workers read this input: one, unless it is a large line-delimited file."""
    if path.skip or not path.uri.lower().endswith(_SPLITTABLE):
        return 1
    try:
        size = FileSystems.match([path.uri])[0].metadata_list[0].size_in_bytes
    except Exception:  # unreadable here: one reader finds out and dead-letters it
        return 1
    return max(1, min(MAX_PARTS, math.ceil(size / part_bytes)))


def expand_inputs(patterns: Sequence[str]) -> list[str]:
    """The URIs `list_inputs` found to read (none it skips), for callers that need no accounting."""
    return [path.uri for path in list_inputs(patterns) if path.skip is None]


def _match_remote(pattern: str) -> list[InputPath]:
    if not _GLOB_CHARS.search(pattern) and pattern.endswith("/"):
        pattern = pattern + "**"
    matched = FileSystems.match([pattern])[0].metadata_list
    if not matched and not _GLOB_CHARS.search(pattern):
        # An object-store "folder" given without its trailing slash.
        matched = FileSystems.match([pattern.rstrip("/") + "/**"])[0].metadata_list
    return [
        InputPath(
            m.path,
            "hidden_file"
            if m.path.rsplit("/", 1)[-1].startswith(".")
            else "empty_file"
            if m.size_in_bytes == 0
            else None,
        )
        for m in matched
    ]


def _match_local(pattern: str) -> Iterator[InputPath]:
    if os.path.isdir(pattern):
        yield from _walk(pattern, None)
        return
    if not _GLOB_CHARS.search(pattern):
        if os.path.lexists(pattern):
            yield InputPath(pattern, local_skip_reason(pattern))
        return
    parts = pattern.split(os.sep)
    static = next(i for i, part in enumerate(parts) if _GLOB_CHARS.search(part))
    root = os.sep.join(parts[:static]) or ("." if not pattern.startswith(os.sep) else os.sep)
    if os.path.isdir(root):
        yield from _walk(root, parts[static:])


def _walk(root: str, pattern: list[str] | None) -> Iterator[InputPath]:
    """Files under `root` (those whose path below it matches the glob components `pattern`, if
    given), loop-safe: a link back to a folder being walked is listed as a loop, not followed.
    Hidden entries are listed as skipped, not descended into (unless the pattern names them)."""
    try:
        top = os.stat(root)
    except OSError:
        return
    depth = None if pattern is None or "**" in pattern else len(pattern)
    for path, parts in _walk_folder(root, (), ((top.st_dev, top.st_ino),), depth):
        if pattern is not None and not _glob_match(pattern, parts):
            continue
        if path.skip == "hidden_file" and pattern and pattern[-1].startswith("."):
            path = InputPath(path.uri, local_skip_reason(path.uri))  # named on purpose: read it
        yield path


def _walk_folder(
    folder: str,
    parts: tuple[str, ...],
    ancestors: tuple[tuple[int, int], ...],
    depth: int | None,
    assets: bool = False,
) -> Iterator[tuple[InputPath, tuple[str, ...]]]:
    try:
        with os.scandir(folder) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
    except OSError:
        yield InputPath(folder, "unreadable_folder"), parts
        return
    names = {entry.name.lower() for entry in entries}
    has_article = any(name.endswith(".nxml") for name in names)
    for entry in entries:
        asset = _asset_reason(entry.name, names, has_article, assets)
        here = (*parts, entry.name)
        try:
            is_dir = entry.is_dir()
        except OSError:
            is_dir = False
        if entry.name.startswith("."):
            yield InputPath(entry.path, "hidden_folder" if is_dir else "hidden_file"), here
        elif not is_dir:
            yield InputPath(entry.path, local_skip_reason(entry.path) or asset), here
        elif depth is None or len(here) < depth:
            try:
                info = os.stat(entry.path)
            except OSError:
                yield InputPath(entry.path, "unreadable_folder"), here
                continue
            key = (info.st_dev, info.st_ino)
            if key in ancestors:
                yield InputPath(entry.path, "symlink_loop"), here
            else:
                yield from _walk_folder(entry.path, here, (*ancestors, key), depth, asset is not None)


def _asset_reason(name: str, siblings: set[str], has_article: bool, in_assets: bool) -> str | None:
    """Files that are parts of a document read elsewhere: a saved page's `NAME_files/` folder
    (beside `NAME.html`), a JATS article's figure images (beside its `.nxml`). The document's
    sample carries them; read alone they would be the same images twice."""
    lower = name.lower()
    if in_assets:
        return "page_asset"
    if lower.endswith("_files") and {f"{lower[:-6]}.html", f"{lower[:-6]}.htm"} & siblings:
        return "page_asset"
    if has_article and os.path.splitext(lower)[1] in _IMAGE_EXTENSIONS:
        return "article_figure"
    return None


def _glob_match(pattern: list[str], parts: tuple[str, ...]) -> bool:
    """Whether path components match glob components (`**`: any number of folders)."""
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(_glob_match(pattern[1:], parts[i:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], pattern[0]) and _glob_match(pattern[1:], parts[1:])


def local_skip_reason(path: str) -> str | None:
    """Why a local path is not opened at all, if it is not: never opens it (a FIFO would block)."""
    try:
        info = os.stat(path)
    except OSError as error:
        if os.path.islink(path):
            return "symlink_loop" if error.errno == errno.ELOOP else "dangling_link"
        return None  # reading it fails with a reason of its own (permission, vanished)
    if stat.S_ISDIR(info.st_mode):
        return "folder"
    if not stat.S_ISREG(info.st_mode):
        return "special_file"
    if info.st_size == 0:
        return "empty_file"
    return None


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
    if jats.looks_like_jats(head, ext):
        return "jats"
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


def read_source(
    uri: str,
    config: IngestConfig,
    on_skip: SkipFn | None = None,
    skip: str | None = None,
    part: tuple[int, int] = (0, 1),
) -> Iterator[Item]:
    """Every sample, dead letter and skip of one input path, each counted once as `read`; at
    least one, so that every input is accounted for.

    `skip` is the listing's reason not to read the path (`InputPath.skip`); a local path that is not
    a regular file with content is skipped here too, without being opened. A file that holds no
    record at all (a header-only CSV, a JSON `[]`) is skipped as `no_records`.
    `on_skip(reason)` is told of records that are not documents at all (a WARC request record,
    a non-HTML response): they are neither samples nor failures.
    `part=(k, n)`: one of n readers of the same file, which yields (and counts) only the items of
    every n-th block of `PART_BLOCK`, starting at block k; the n parts together yield each item once.
    """
    k, n = part
    on_skip = on_skip or _count_skip
    if k:
        on_skip = _ignore_skip  # every part sees the file's skipped records; the first counts them
    reason = skip or ("://" not in uri and local_skip_reason(uri)) or None
    items = iter([skipped(uri, reason)]) if reason else _read_guarded(uri, config, on_skip)
    empty = True
    for ordinal, item in enumerate(items):
        empty = False
        if n > 1 and (ordinal // PART_BLOCK) % n != k:
            continue
        count("read")
        yield item
    if empty and not k:
        count("read")
        yield skipped(uri, "no_records")


def _ignore_skip(reason: str) -> None:
    """`on_skip` of the parts after the first: their skips are the first part's too."""


def _count_skip(reason: str) -> None:
    count(f"skipped:{STAGE}/{reason}")


# Failures of the file system, by what the user can do about them.
_OS_REASONS: tuple[tuple[type[OSError], str], ...] = (
    (PermissionError, "permission_denied"),
    (FileNotFoundError, "file_vanished"),
    (IsADirectoryError, "folder"),
)


def _read_guarded(uri: str, config: IngestConfig, on_skip: SkipFn) -> Iterator[Item]:
    try:
        source = Source.probe(uri)
        yield from _READERS[detect_kind(source)](source, config, on_skip)
    except Rejected as rejected:
        yield dead_letter(uri, None, rejected.reason, rejected)
    except MemoryError as error:
        yield dead_letter(uri, None, "too_large", error)
    except RecursionError as error:
        yield dead_letter(uri, None, "too_deep", error)
    except OSError as error:
        reason = next((r for kind, r in _OS_REASONS if isinstance(error, kind)), "io_error")
        yield dead_letter(uri, None, reason, error)
    except Exception as error:  # any other failure on input data: dead-letter it, keep the run going
        yield dead_letter(uri, None, "read_error", error)


def _unsupported(source: Source, config: IngestConfig, on_skip: SkipFn) -> Iterator[Item]:
    raise Rejected("unsupported_type")


Reader = Callable[[Source, IngestConfig, SkipFn], Iterator[Item]]
_READERS: dict[str, Reader] = {
    "warc": web.read_warc,
    "html": web.read_html,
    "jats": jats.read_jats,
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
