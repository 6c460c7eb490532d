"""Web sources: WARC/ARC (streamed with warcio, one record in memory at a time) and raw HTML pages.

HTML becomes main text with trafilatura (chosen by `benchmarks/ingest_eval.py`: see docs/ingest.md);
the page's URL, title, date, content type and charset are kept as metadata.
"""

from __future__ import annotations

import codecs
import logging
import posixpath
import re
import zlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import trafilatura
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from charset_normalizer import from_bytes
from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed

from medcurate.pipelines.config import IngestConfig
from medcurate.pipelines.ingest.common import Item, Rejected, SkipFn, Source, dead_letter, make_sample
from medcurate.pipelines.ingest.multimodal import Resolve, build_page, has_images, public_ref
from medcurate.schemas.sample import Modality, SourceKind

# Both log URLs and excerpts of the input they fail on.
logging.getLogger("trafilatura").setLevel(logging.CRITICAL)
logging.getLogger("warcio").setLevel(logging.CRITICAL)

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_FAVOR = {"balanced": {}, "precision": {"favor_precision": True}, "recall": {"favor_recall": True}}
# Errors warcio lets through when a (gzip) WARC ends early or its framing is broken.
_TRUNCATION_ERRORS = (EOFError, zlib.error, ValueError, OSError)


def decode_html(payload: bytes, declared: str | None) -> tuple[str, str]:
    """Page text and the charset used: the HTTP header's, then the page's <meta>, UTF-8, then a guess."""
    candidates = [declared]
    meta = _META_CHARSET.search(payload[:4096])
    if meta:
        candidates.append(meta.group(1).decode("ascii"))
    candidates.append("utf-8")
    for name in candidates:
        if not name:
            continue
        try:
            charset = codecs.lookup(name).name
            return payload.decode(charset), charset
        except (LookupError, UnicodeDecodeError):
            continue
    best = from_bytes(payload[:65536]).best()
    charset = best.encoding if best is not None else "latin-1"
    return payload.decode(charset, errors="replace"), charset


def extract_html(html: str, url: str | None, config: IngestConfig) -> tuple[str, dict[str, str]]:
    """Main text of a page and its url/title/date metadata; `no_text` when nothing is left."""
    document = trafilatura.bare_extraction(html, url=url, with_metadata=True, **_FAVOR[config.html_favor])
    text = (document.text or "").strip() if document is not None else ""
    if not text:
        raise Rejected("no_text")
    if len(text) > config.max_text_chars:
        raise Rejected("too_large")
    metadata = {"url": url or document.url, "title": document.title, "date": document.date}
    return text, {key: value for key, value in metadata.items() if value}


def _web_sample(
    uri: str, record: int | None, payload: bytes, content_type: str, charset: str | None, url: str | None,
    config: IngestConfig, extra: dict[str, str], resolve: Resolve | None = None,
) -> Item:  # fmt: skip
    html, used_charset = decode_html(payload, charset)
    if resolve is not None and has_images(html):
        page = build_page(html, resolve, config)
        if page is not None:
            builder, info = page
            metadata = {
                "url": url or "",
                **info,
                **extra,
                "charset": used_charset,
                "content_type": content_type,
            }
            return builder.sample(uri, record, SourceKind.WEB.value, metadata)
    text, metadata = extract_html(html, url, config)
    metadata.update(extra, charset=used_charset, content_type=content_type)
    return make_sample(
        uri, record, source_kind=SourceKind.WEB.value, modality=Modality.TEXT.value,
        mime_type="text/plain", text=text, metadata=metadata,
    )  # fmt: skip


def read_html(source: Source, config: IngestConfig, on_skip: SkipFn) -> Iterator[Item]:
    """A page; its images are attached when their files lie beside it (relative links only)."""
    payload = source.read_all(config.max_record_bytes)
    yield _web_sample(
        source.uri, None, payload, "text/html", None, None, config, {}, _local_assets(source.uri, config)
    )


def _local_assets(page_uri: str, config: IngestConfig) -> Resolve:
    """Reads an image a saved page links relatively (`fig1.png`, `page_files/fig1.png`): nothing
    outside the page's folder, nothing from the network."""
    folder = page_uri.rsplit("/", 1)[0] if "/" in page_uri else "."

    def resolve(src: str) -> tuple[str, bytes | None]:
        path = unquote(src.split("?", 1)[0].split("#", 1)[0])
        if urlsplit(src).scheme or path.startswith("/") or not path:
            return public_ref(src), None
        relative = posixpath.normpath(path)
        if relative.startswith(".."):
            return relative, None
        full = f"{folder}/{relative}"
        try:
            if not FileSystems.exists(full):
                return relative, None
            with FileSystems.open(full, compression_type=CompressionTypes.UNCOMPRESSED) as stream:
                data = stream.read(config.multimodal.max_image_bytes + 1)
        except OSError:
            return relative, None
        return relative, data

    return resolve


def _content_type(header: str | None) -> tuple[str, str | None]:
    """`text/html; charset=UTF-8` -> ("text/html", "UTF-8")."""
    if not header:
        return "", None
    mime, _, params = header.partition(";")
    charset = re.search(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", params, re.I)
    return mime.strip().lower(), charset.group(1) if charset else None


class _QuietArchiveIterator(ArchiveIterator):
    """warcio writes the line after a bad record (input content) to stderr; keep it silent."""

    INC_RECORD = ""


def _cut_short(record: Any) -> bool:
    """warcio ends a record quietly where the file ends: its declared length was not all there."""
    return record is not None and getattr(record.raw_stream, "limit", 0) > 0


class WarcImages:
    """The image records of a WARC by target URI, read in a second pass over the file the first
    time a page of it links an image (a WARC of text pages never pays for it)."""

    def __init__(self, source: Source, config: IngestConfig) -> None:
        self.source = source
        self.config = config
        self._index: dict[str, bytes] | None = None

    def _load(self) -> dict[str, bytes]:
        index: dict[str, bytes] = {}
        budget = self.config.max_file_bytes
        try:
            with self.source.open_raw() as stream:
                for record in _QuietArchiveIterator(stream, arc2warc=True):
                    if record.rec_type not in ("response", "resource"):
                        continue
                    headers = record.http_headers if record.rec_type == "response" else record.rec_headers
                    if headers is None or (
                        record.rec_type == "response" and not headers.get_statuscode().startswith("2")
                    ):
                        continue
                    mime, _ = _content_type(headers.get_header("Content-Type"))
                    url = (record.rec_headers.get_header("WARC-Target-URI") or "").strip()
                    if not mime.startswith("image/") or not url or url in index:
                        continue
                    data = record.content_stream().read(self.config.multimodal.max_image_bytes + 1)
                    if len(data) <= self.config.multimodal.max_image_bytes and len(data) <= budget:
                        index[url] = data
                        budget -= len(data)
        except Exception:  # a broken tail: the main pass reports it; the images before it still count
            pass
        return index

    def resolver(self, page_url: str, html: bytes) -> Resolve | None:
        """How the page's image links find their records; None when the page links no image or
        the WARC holds none (the page is read as text without parsing it twice)."""
        if b"<img" not in html and b"<IMG" not in html:
            return None
        if self._index is None:
            self._index = self._load()
        if not self._index:
            return None
        index = self._index

        def resolve(src: str) -> tuple[str, bytes | None]:
            url = urljoin(page_url, src)
            return public_ref(url), index.get(url)

        return resolve


def read_warc(source: Source, config: IngestConfig, on_skip: SkipFn) -> Iterator[Item]:
    """Every HTML response/resource and WET text record; other records are skipped with a reason.
    A page's images are attached when the WARC holds them (`WarcImages`)."""
    images = WarcImages(source, config)
    with source.open_raw() as stream:
        iterator = _QuietArchiveIterator(stream, arc2warc=True)
        records = iter(iterator)
        number, record = -1, None
        while True:
            previous = record
            try:
                record = next(records)
            except StopIteration:
                # A cut gzip member is dropped silently: the unparsed tail tells.
                if _cut_short(previous) or (source.size is not None and iterator.offset < source.size):
                    yield dead_letter(source.uri, None, "truncated_warc")
                return
            except ArchiveLoadFailed as error:
                yield dead_letter(source.uri, None, "corrupt_warc", error)
                return
            except AttributeError as error:
                # warcio parses a response/request record's HTTP headers by its WARC-Target-URI and
                # fails on a record without one; the stream cannot be resynchronised after it.
                yield dead_letter(source.uri, number + 1, "warc_record_without_uri", error)
                return
            except _TRUNCATION_ERRORS as error:
                yield dead_letter(source.uri, None, "truncated_warc", error)
                return
            if _cut_short(previous):
                yield dead_letter(source.uri, None, "truncated_warc")
                return
            number += 1
            try:
                item = _warc_record(source.uri, number, record, config, on_skip, images)
            except Rejected as rejected:
                item = dead_letter(source.uri, number, rejected.reason, rejected)
            except _TRUNCATION_ERRORS as error:
                yield dead_letter(source.uri, number, "truncated_warc", error)
                return
            if item is not None and _cut_short(record):
                # The file ended inside this record: what was read of it is a fragment, not a page.
                yield dead_letter(source.uri, number, "truncated_warc")
                return
            if item is not None:
                yield item


def _warc_record(
    uri: str, number: int, record: Any, config: IngestConfig, on_skip: SkipFn, images: WarcImages
) -> Item | None:
    rec_type = record.rec_type
    if not (record.rec_headers.get_header("Content-Length") or "").strip().isdigit():
        raise Rejected("corrupt_warc")  # warcio reads it as empty; the bytes after it are misread
    if rec_type not in ("response", "resource", "conversion"):
        on_skip(f"warc_{rec_type}")
        return None
    headers = record.http_headers if rec_type == "response" else None
    if rec_type == "response":
        if headers is None:
            on_skip("non_http_response")
            return None
        status = headers.get_statuscode()
        if not status.startswith("2"):
            on_skip("http_status")
            return None
        mime, charset = _content_type(headers.get_header("Content-Type"))
    else:
        mime, charset = _content_type(record.rec_headers.get_header("Content-Type"))
    is_text = rec_type == "conversion" and mime == "text/plain"
    if not is_text and mime not in HTML_TYPES:
        on_skip("non_html")
        return None
    url = (record.rec_headers.get_header("WARC-Target-URI") or "").strip()
    if not url:
        raise Rejected("warc_record_without_uri")  # required by the WARC standard for these records
    payload = record.content_stream().read(config.max_record_bytes + 1)
    if len(payload) > config.max_record_bytes:
        raise Rejected("too_large")
    extra = {"warc_date": record.rec_headers.get_header("WARC-Date") or ""}
    if not is_text:
        resolve = images.resolver(url, payload)
        return _web_sample(uri, number, payload, mime, charset, url, config, extra, resolve)
    text, used_charset = decode_html(payload, charset)
    text = text.strip()
    if not text:
        raise Rejected("no_text")
    if len(text) > config.max_text_chars:
        raise Rejected("too_large")
    metadata = {"url": url or "", "charset": used_charset, "content_type": mime, **extra}
    return make_sample(
        uri, number, source_kind=SourceKind.WEB.value, modality=Modality.TEXT.value,
        mime_type="text/plain", text=text, metadata={k: v for k, v in metadata.items() if v},
    )  # fmt: skip
