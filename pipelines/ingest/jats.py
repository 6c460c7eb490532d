"""Scientific articles in JATS XML (the PubMed Central open-access layout: an `.nxml` file with its
figure files beside it) as one interleaved sample each.

Reading order is title, abstract, then the body's section titles and paragraphs. Each figure (its
image and then its label and caption as a text block) is placed right after the paragraph that
first cites it (`<xref ref-type="fig" rid=...>`), as PMC-OA and MedICaT pair figures with their
citing text; a figure no paragraph cites follows the body. Article ids (PMC, PMID, DOI), the
figure id and the license travel with every image (`image_meta.source_ref`, `.license`) and the
sample's metadata. The XML parser resolves no entity and loads no DTD or network resource.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterator
from typing import Any

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from lxml import etree

from medcurate.pipelines.config import IngestConfig
from medcurate.pipelines.ingest.common import Item, Rejected, SkipFn, Source
from medcurate.pipelines.ingest.multimodal import DocumentBuilder, squash
from medcurate.schemas.sample import SourceKind

XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
FIGURE_EXTENSIONS = ("", ".jpg", ".jpeg", ".png", ".gif", ".tif", ".tiff", ".webp")
# Subtrees that are not running text of a paragraph (they are read on their own or not at all).
_NOT_TEXT = frozenset({"fig", "table-wrap", "disp-formula", "supplementary-material", "fig-group"})
_ID_TYPES = {"pmc": "pmcid", "pmcid": "pmcid", "pmid": "pmid", "doi": "doi", "publisher-id": "publisher_id"}
# The root element is <article>: after an optional XML declaration, comments and a doctype naming it.
_HEAD = re.compile(rb"^\s*(<\?xml[^>]*>\s*)?(<!--.*?-->\s*)*(<!DOCTYPE\s+article\b|<article\b)", re.I | re.S)


def looks_like_jats(head: bytes, extension: str) -> bool:
    """An `.nxml` file, or XML whose root element is `<article>` (JATS/NLM DTDs)."""
    if extension == ".nxml":
        return True
    return bool(_HEAD.match(head.removeprefix(b"\xef\xbb\xbf")))


def _local(tag: Any) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def paragraph_text(element: Any) -> str:
    """Running text of an element without figures, tables and formulas inside it."""
    pieces: list[str] = []

    def visit(node: Any) -> None:
        if _local(node.tag) in _NOT_TEXT:
            if node.tail:
                pieces.append(node.tail)
            return
        if node.text:
            pieces.append(node.text)
        for child in node:
            visit(child)
        if node is not element and node.tail:
            pieces.append(node.tail)

    visit(element)
    return squash("".join(pieces))


def _article_ids(root: Any) -> dict[str, str]:
    ids: dict[str, str] = {}
    for element in root.iterfind(".//{*}article-meta/{*}article-id"):
        key = _ID_TYPES.get((element.get("pub-id-type") or "").lower())
        if key and element.text and key not in ids:
            ids[key] = element.text.strip()
    if "pmcid" in ids and not ids["pmcid"].upper().startswith("PMC"):
        ids["pmcid"] = "PMC" + ids["pmcid"]
    return ids


def _license(root: Any) -> str:
    license_element = root.find(".//{*}permissions/{*}license")
    if license_element is not None:
        link = license_element.get(XLINK_HREF) or license_element.get("license-type") or ""
        return link.strip() or squash("".join(license_element.itertext()))[:200]
    statement = root.find(".//{*}permissions/{*}copyright-statement")
    return squash(statement.text) if statement is not None and statement.text else ""


def read_jats(source: Source, config: IngestConfig, on_skip: SkipFn) -> Iterator[Item]:
    data = source.read_all(config.max_file_bytes)
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, recover=False
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as error:
        raise Rejected("malformed_xml", error) from None
    if _local(root.tag) != "article":
        raise Rejected("not_jats")
    yield article_sample(root, source.uri, config)


def article_sample(root: Any, uri: str, config: IngestConfig) -> Item:
    ids = _article_ids(root)
    article_id = ids.get("pmcid") or ids.get("pmid") or ids.get("doi") or posixpath.basename(uri)
    license_ = _license(root)
    figures = {fig.get("id") or f"fig{i}": fig for i, fig in enumerate(root.iter("{*}fig", "fig"))}
    placed: set[str] = set()
    builder = DocumentBuilder(config)
    folder = uri.rsplit("/", 1)[0] if "/" in uri else "."

    def place(figure_id: str) -> None:
        if figure_id in placed or figure_id not in figures:
            return
        placed.add(figure_id)
        figure = figures[figure_id]
        label = squash("".join(figure.findtext("{*}label") or ""))
        caption_element = figure.find("{*}caption")
        caption = paragraph_text(caption_element) if caption_element is not None else ""
        caption = squash(f"{label} {caption}") if label else caption
        graphic = figure.find(".//{*}graphic")
        href = graphic.get(XLINK_HREF) if graphic is not None else None
        data = _figure_file(folder, href, config) if href else None
        builder.add_image(data, f"{article_id}#{figure_id}", caption, license_)
        builder.add_text(caption, min_words=1)

    title_element = root.find(".//{*}article-meta/{*}title-group/{*}article-title")
    title = paragraph_text(title_element) if title_element is not None else ""
    builder.add_text(title, min_words=1)
    abstract = root.find(".//{*}article-meta/{*}abstract")
    body = root.find("{*}body")
    for section in (abstract, body):
        if section is None:
            continue
        for element in section.iter("{*}p", "{*}title"):
            if any(_local(a.tag) in _NOT_TEXT for a in element.iterancestors()):
                continue
            builder.add_text(paragraph_text(element), min_words=1)
            if _local(element.tag) == "p":
                for xref in element.iter("{*}xref"):
                    if xref.get("ref-type") == "fig":
                        for rid in (xref.get("rid") or "").split():
                            place(rid)
    for figure_id in figures:
        place(figure_id)
    metadata = {
        "article_id": article_id,
        **{key: value for key, value in ids.items() if key != "publisher_id"},
        "title": title,
        "journal": squash(root.findtext(".//{*}journal-meta//{*}journal-title") or ""),
        "license": license_,
        "figure_ids": json.dumps(list(figures)),
        "content_type": "application/jats+xml",
    }
    return builder.sample(uri, None, SourceKind.ARTICLE.value, metadata)


def _figure_file(folder: str, href: str, config: IngestConfig) -> bytes | None:
    """A figure's file beside the article: the name as linked, or with an image extension (PMC
    links `pone.0000217.g001` for `pone.0000217.g001.jpg`); never outside the folder."""
    name = posixpath.normpath(href)
    if name.startswith(("..", "/")) or "://" in href:
        return None
    for extension in FIGURE_EXTENSIONS:
        path = f"{folder}/{name}{extension}"
        try:
            if FileSystems.exists(path):
                with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as stream:
                    return stream.read(config.multimodal.max_image_bytes + 1)
        except OSError:
            return None
    return None
