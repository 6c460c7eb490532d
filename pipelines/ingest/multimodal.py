"""Interleaved documents: text blocks and images in reading order, one multimodal sample per page,
article or study (the OBELICS layout of `schemas.sample.interleave`).

`DocumentBuilder` is the pure core every multimodal reader shares: it takes parts in order, applies
the OBELICS-style filters (image size and aspect, images per document, words per text block, an
image repeated inside the document), re-encodes each image from its pixels (no metadata survives)
and counts every part it leaves out under a reason. `html_parts` walks an HTML page's DOM in order
for the web readers.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import lxml.html

from medcurate.pipelines.config import IngestConfig
from medcurate.pipelines.ingest.common import STAGE, Rejected, make_sample
from medcurate.pipelines.stage import count
from medcurate.schemas.events import Drop
from medcurate.schemas.sample import Modality, Part, interleave, sample_id

_SPACE = re.compile(r"\s+")


def words(text: str) -> int:
    return len(text.split())


def squash(text: str | None) -> str:
    return _SPACE.sub(" ", text or "").strip()


@dataclass
class DocumentBuilder:
    """Collects a document's parts in order; `sample` turns them into one sample (or a Drop)."""

    config: IngestConfig
    parts: list[Part] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)
    _seen_images: set[str] = field(default_factory=set)

    def drop(self, reason: str) -> None:
        self.dropped[reason] += 1
        count(f"parts_dropped:{STAGE}/{reason}")

    def add_text(self, text: str, min_words: int | None = None) -> None:
        text = text.strip()
        least = self.config.multimodal.min_block_words if min_words is None else min_words
        if not text:
            return
        if words(text) < least:
            self.drop("text_block_too_short")
            return
        self.parts.append(text)

    @property
    def images(self) -> int:
        return sum(1 for part in self.parts if not isinstance(part, str))

    def add_image(
        self, data: bytes | None, source_ref: str, caption: str | None = None, license: str | None = None
    ) -> bool:
        """Attach an image (bytes as found); False, with the reason counted, when it is left out."""
        from medcurate.pipelines.ingest.images import decode_image, encode_image

        rules = self.config.multimodal
        if data is None:
            self.drop("image_unavailable")
            return False
        if len(data) > rules.max_image_bytes:
            self.drop("image_too_large")
            return False
        if self.images >= rules.max_images_per_document:
            self.drop("too_many_images")
            return False
        try:
            image, source_format, _, _ = decode_image(data, self.config)
        except Rejected as rejected:
            self.drop(rejected.reason if "image" in rejected.reason else f"image_{rejected.reason}")
            return False
        short, long = sorted(image.size)
        if short < rules.min_image_side:
            self.drop("image_too_small")
            return False
        if long > rules.max_image_side:
            self.drop("image_too_large")
            return False
        if long / short > rules.max_aspect_ratio:
            self.drop("image_aspect_ratio")
            return False
        fields = encode_image(image, "JPEG" if source_format == "JPEG" else "PNG", self.config)
        digest = hashlib.sha256(fields["image_bytes"]).hexdigest()
        if digest in self._seen_images:
            self.drop("duplicate_image_in_document")
            return False
        self._seen_images.add(digest)
        meta = {
            "format": fields["image_format"],
            "width": fields["image_width"],
            "height": fields["image_height"],
            "bytes": len(fields["image_bytes"]),
            "phash": fields["image_phash"],
            "source_ref": source_ref,
            "caption": caption or None,
            "license": license or None,
        }
        self.parts.append((fields["image_bytes"], meta))
        return True

    def sample(
        self,
        uri: str,
        record: int | None,
        source_kind: str,
        metadata: dict[str, str],
        allow_text: bool = True,
    ) -> dict[str, Any] | Drop:
        """The document as a multimodal sample; without images left, a text sample (when
        `allow_text` and the configuration keep it) or a Drop saying why."""
        metadata = {k: v for k, v in metadata.items() if v}
        if self.dropped:
            metadata["parts_dropped"] = json.dumps(dict(sorted(self.dropped.items())))
        fields = interleave(self.parts)
        if not self.parts:
            return _drop(uri, record, "no_content")
        if not self.images:
            if not allow_text or self.config.multimodal.no_images_left == "drop":
                return _drop(uri, record, "no_images_left")
            return make_sample(
                uri, record, source_kind=source_kind, modality=Modality.TEXT.value,
                mime_type="text/plain", text=fields["text"], metadata=metadata,
            )  # fmt: skip
        metadata["images"] = str(self.images)
        return make_sample(
            uri, record, source_kind=source_kind, modality=Modality.MULTIMODAL.value,
            mime_type="application/x-interleaved", metadata=metadata, **fields,
        )  # fmt: skip


def _drop(uri: str, record: int | None, reason: str) -> Drop:
    source_uri = uri if record is None else f"{uri}#record={record}"
    return Drop(STAGE, reason, source_uri, sample_id(uri, record or 0))


# Subtrees that are never document content.
_SKIP = frozenset(
    {"script", "style", "noscript", "nav", "header", "footer", "aside", "form", "button", "template",
     "svg", "iframe", "select", "head", "menu"}
)  # fmt: skip
# Elements whose text is one block (read whole unless they hold an image).
_BLOCKS = frozenset(
    {"p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "blockquote", "pre", "td", "th", "dd", "dt",
     "caption", "address"}
)  # fmt: skip

# An image part as the page gives it: its URL (as written), alt text and figure caption.
HtmlImage = tuple[str, str, str]
HtmlPart = str | HtmlImage


def html_parts(html: str) -> tuple[list[HtmlPart], dict[str, str]]:
    """Text blocks and images of a page in document order, and its title and license link.

    An image inside `<figure>` carries the `<figcaption>` text, which also follows the figure's
    images as a text block (it is part of the page's text); alt text stays with the image only."""
    root = lxml.html.document_fromstring(html)
    info = {"title": squash(root.findtext(".//title"))}
    license_link = root.find(".//link[@rel='license']")
    if license_link is None:
        license_link = root.find(".//a[@rel='license']")
    if license_link is not None and license_link.get("href"):
        info["license"] = license_link.get("href", "").strip()
    body = root.find("body")
    parts: list[HtmlPart] = []
    _walk(body if body is not None else root, parts)
    return parts, {k: v for k, v in info.items() if v}


def _walk(element: Any, parts: list[HtmlPart]) -> None:
    tag = element.tag if isinstance(element.tag, str) else ""
    if not tag or tag in _SKIP:
        return
    if tag == "img":
        if element.get("src"):
            parts.append((element.get("src", "").strip(), squash(element.get("alt")), ""))
        return
    if tag == "figure":
        caption_element = element.find(".//figcaption")
        caption = squash(caption_element.text_content()) if caption_element is not None else ""
        for image in element.iter("img"):
            if image.get("src"):
                parts.append((image.get("src", "").strip(), squash(image.get("alt")), caption))
        if caption:
            parts.append(caption)
        return
    if tag in _BLOCKS and next(element.iter("img", "figure"), None) is None:
        text = squash(element.text_content())
        if text:
            parts.append(text)
        return
    if element.text and element.text.strip():
        parts.append(squash(element.text))
    for child in element:
        _walk(child, parts)
        if child.tail and child.tail.strip():
            parts.append(squash(child.tail))


def has_images(html: str) -> bool:
    """Cheap check before the DOM walk: does the page reference any image at all?"""
    return "<img" in html or "<IMG" in html


# Resolves an image link as the page writes it (`src`) to (reference recorded, bytes or None).
Resolve = Callable[[str], tuple[str, bytes | None]]


def build_page(
    html: str, resolve: Resolve, config: IngestConfig
) -> tuple[DocumentBuilder, dict[str, str]] | None:
    """The page as parts with its images' bytes attached; None when no image of it is at hand
    (the page is then read as text by the text path)."""
    parts, info = html_parts(html)
    resolved: list[str | tuple[str, bytes | None, str]] = []
    for part in parts:
        if isinstance(part, str):
            resolved.append(part)
            continue
        src, alt, caption = part
        ref, data = resolve(src) if not src.startswith("data:") else ("data:", None)
        resolved.append((ref, data, caption or alt))
    if not any(not isinstance(p, str) and p[1] is not None for p in resolved):
        return None
    builder = DocumentBuilder(config)
    for part in resolved:
        if isinstance(part, str):
            builder.add_text(part)
        else:
            ref, data, caption = part
            builder.add_image(data, ref, caption, info.get("license"))
    return builder, info


def public_ref(url: str) -> str:
    """Where an image came from, without query string or fragment (they can carry session ids)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.scheme else parts.path
