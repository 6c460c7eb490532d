"""Image de-identification: published bytes are re-encoded from pixels, burned-in text is boxed out.

Re-encoding from raw pixels drops every metadata container (EXIF with GPS, XMP, PNG text chunks, ICC
profiles that can name a device). Burned-in text is read with Tesseract, run through the same text
analyzer as notes, and every word of a PHI span is painted over. An image whose text could not be
checked goes to review instead of straight to publication.
"""

from __future__ import annotations

import io
import json
import logging
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PIL import Image, ImageDraw, ImageOps

from medcurate.privacy.config import DeidConfig

if TYPE_CHECKING:
    from medcurate.privacy.text import TextDeidentifier

# Pillow logs every EXIF tag with its value at DEBUG while parsing (owner names, GPS, free-text
# descriptions): that logger never goes below INFO in a process that handles images.
logging.getLogger("PIL.TiffImagePlugin").setLevel(logging.INFO)

OCR_MIN_SIDE = 32  # below this no text is legible, to Tesseract or to a reader
_SAVE_FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "WEBP": "WEBP"}
_MODES = {"1", "L", "LA", "RGB", "RGBA", "I;16", "I", "F"}


@dataclass(frozen=True)
class OcrWord:
    text: str
    left: int
    top: int
    width: int
    height: int
    confidence: float


def load_pixels(data: bytes) -> Image.Image:
    """Decode, refusing decompression bombs, with the EXIF orientation applied to the pixels."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        image = Image.open(io.BytesIO(data))
        image.load()
    image = ImageOps.exif_transpose(image)
    if image.mode not in _MODES:
        image = image.convert("RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB")
    return image


def encode_clean(image: Image.Image, fmt: str | None) -> tuple[bytes, str]:
    """Pixels only, in a fresh image: nothing of the source's metadata can come along."""
    fresh = Image.frombytes(image.mode, image.size, image.tobytes())
    out_format = _SAVE_FORMATS.get((fmt or "").upper(), "PNG")
    if out_format == "JPEG" and fresh.mode not in ("L", "RGB"):
        out_format = "PNG"
    buffer = io.BytesIO()
    fresh.save(buffer, format=out_format, **({"quality": 95} if out_format == "JPEG" else {}))
    return buffer.getvalue(), out_format


def ocr_words(image: Image.Image) -> list[OcrWord]:
    import pytesseract

    gray = image.convert("L")
    if min(gray.size) < 300:
        gray = gray.resize((gray.width * 2, gray.height * 2))  # Tesseract reads small glyphs poorly
        scale = 2
    else:
        scale = 1
    data = pytesseract.image_to_data(gray, output_type=pytesseract.Output.DICT, config="--psm 11")
    words = []
    for i, text in enumerate(data["text"]):
        if text.strip():
            words.append(
                OcrWord(
                    text.strip(),
                    data["left"][i] // scale,
                    data["top"][i] // scale,
                    -(-data["width"][i] // scale),
                    -(-data["height"][i] // scale),
                    float(data["conf"][i]),
                )
            )
    return words


def phi_boxes(
    words: list[OcrWord], deidentifier: TextDeidentifier, min_confidence: float
) -> list[tuple[int, int, int, int]]:
    """Boxes of words inside PHI spans, plus words Tesseract could not read confidently."""
    if not words:
        return []
    offsets = []
    cursor = 0
    for word in words:
        offsets.append((cursor, cursor + len(word.text)))
        cursor += len(word.text) + 1
    text = " ".join(word.text for word in words)
    spans = deidentifier.deidentify_batch([text])[0].spans
    boxes = []
    for word, (start, end) in zip(words, offsets, strict=True):
        unreadable = word.confidence < min_confidence and any(c.isalnum() for c in word.text)
        if unreadable or _name_like(word.text) or any(s.start < end and start < s.end for s in spans):
            boxes.append((word.left, word.top, word.left + word.width, word.top + word.height))
    return boxes


def _name_like(word: str) -> bool:
    """Burned-in annotations carry names without context ("QUARTERFIELD WILHELMINA"): a census
    name or a long word that is not English is boxed on its own."""
    from medcurate.privacy.vocab import NOT_NAMES, is_english, is_name_word

    token = word.strip(".,:;()[]'\"").lower()
    if len(token) < 4 or not token.isalpha() or token in NOT_NAMES or is_english(token):
        return False
    return is_name_word(token) or len(token) >= 6


def paint_boxes(image: Image.Image, boxes: list[tuple[int, int, int, int]], margin: int = 2) -> Image.Image:
    painted = image.copy()
    draw = ImageDraw.Draw(painted)
    fill = 0 if painted.mode in ("1", "L", "I", "I;16", "F") else (0,) * len(painted.getbands())
    for left, top, right, bottom in boxes:
        draw.rectangle((left - margin, top - margin, right + margin, bottom + margin), fill=fill)
    return painted


def scrub_image_sample(
    sample: dict[str, Any],
    deidentifier: TextDeidentifier | None = None,
    config: DeidConfig | None = None,
) -> dict[str, Any]:
    """A copy of the sample whose image bytes carry no metadata and no readable burned-in PHI."""
    if sample.get("image_bytes") is None:
        return sample
    config = config or DeidConfig()
    out = dict(sample)
    metadata = dict(sample.get("metadata") or {})
    reasons = list(sample.get("review_reasons") or [])
    image = load_pixels(sample["image_bytes"])
    boxes: list[tuple[int, int, int, int]] = []
    if min(image.size) < OCR_MIN_SIDE:
        metadata["deid.ocr"] = "skipped_too_small"
    elif not config.ocr or deidentifier is None:
        metadata["deid.ocr"] = "not_run"
        reasons.append("deid:burned_in_text_unchecked")
    else:
        try:
            boxes = phi_boxes(ocr_words(image), deidentifier, config.ocr_min_confidence)
            metadata["deid.ocr"] = "checked"
        except Exception as error:  # Tesseract missing or failing: never publish unchecked
            metadata["deid.ocr"] = f"failed:{type(error).__name__}"
            reasons.append("deid:burned_in_text_unchecked")
    if boxes:
        image = paint_boxes(image, boxes)
        metadata["deid.boxes"] = json.dumps(boxes)
    data, fmt = encode_clean(image, sample.get("image_format"))
    out.update(
        image_bytes=data,
        image_format=fmt.lower(),
        image_width=image.width,
        image_height=image.height,
        image_mode=image.mode,
        metadata=metadata,
        deid_confidence=0.0 if "deid:burned_in_text_unchecked" in reasons else 1.0,
    )
    if reasons != list(sample.get("review_reasons") or []):
        out["review_reasons"] = reasons
        out["review_status"] = "pending"
    return out
