"""Image de-identification: published bytes are re-encoded from pixels, burned-in text is boxed out.

Re-encoding from raw pixels drops every metadata container (EXIF with GPS, XMP, PNG text chunks, ICC
profiles that can name a device). Burned-in text lines are found by a trained text detector
(`text_detect`), read with Tesseract, run through the same text analyzer as notes, and a line
holding PHI is painted over. An image whose text could not be checked goes to review instead of
straight to publication. The multi-pass OCR finder (`find_text`) stays for callers that need the
words themselves.
"""

from __future__ import annotations

import io
import json
import logging
import re
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
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
    """One Tesseract pass (sparse text, 2x below 300 px): what the text of an image reads as."""
    import pytesseract

    gray = image.convert("L")
    scale = 2 if min(gray.size) < 300 else 1  # Tesseract reads small glyphs poorly
    if scale > 1:
        gray = gray.resize((gray.width * scale, gray.height * scale))
    data = pytesseract.image_to_data(gray, output_type=pytesseract.Output.DICT, config="--psm 11")
    return _words(data, scale)


def _words(data: dict[str, list[Any]], scale: float) -> list[OcrWord]:
    """Tesseract's word rows, mapped back to the original image's pixels (boxes rounded outwards)."""
    words = []
    for i, text in enumerate(data["text"]):
        if text.strip():
            left, top = int(data["left"][i] / scale), int(data["top"][i] / scale)
            right = -(-(data["left"][i] + data["width"][i]) // scale)
            bottom = -(-(data["top"][i] + data["height"][i]) // scale)
            words.append(
                OcrWord(text.strip(), left, top, int(right) - left, int(bottom) - top, float(data["conf"][i]))
            )
    return words


Box = tuple[int, int, int, int]

# Tesseract passes for `find_text`: (view of the image, page segmentation mode, least confidence
# of a word read in it). Sparse text (11) on the grey image finds scattered banner fields; the
# locally normalised view brings out text whose contrast to its surroundings is low, in sparse mode
# and in the default layout analysis (3), which reads lines that sparse mode splits or drops. In
# sparse mode that view also reads "words" in image texture, almost all below 50% confidence: a
# word found only there needs 50 (30 if it has a digit). No inverted view: Tesseract 5 binarises
# each page itself, and light-on-dark text read the same inverted as not (identical words on the
# generated set). Each pass added recall there; the grey image in layout mode added none.
TEXT_PASSES: tuple[tuple[str, int, float], ...] = (("gray", 11, 0.0), ("local", 11, 50.0), ("local", 3, 0.0))
DIGIT_CONFIDENCE = 30.0
# Images are upscaled (at most 3x) until the longer side reaches this: banner glyphs of 8 px need
# about 24 px for Tesseract, and large images (photos, scans) carry larger text.
TEXT_UPSCALED_SIDE = 2400


def find_text(image: Image.Image, passes: tuple[tuple[str, int, float], ...] = TEXT_PASSES) -> list[OcrWord]:
    """Every word Tesseract reads in any of `passes`, duplicates across passes merged.

    Recall over a single reading: OCR misses text in one view that it reads in another (contrast,
    layout mode), and banner glyphs of 8-12 px are below what it segments reliably until
    upscaled. Boxes are in the original image's pixels; words a fifth of the image tall are
    layout artefacts around edges and are dropped."""
    import pytesseract

    from medcurate.privacy.text_detect import tallest_line

    gray = image.convert("L")
    scale = max(1, min(3, TEXT_UPSCALED_SIDE // max(gray.size)))
    if scale > 1:
        gray = gray.resize((gray.width * scale, gray.height * scale), Image.Resampling.LANCZOS)
    views: dict[str, Image.Image] = {}
    found: list[OcrWord] = []
    for view, psm, least in passes:
        if view not in views:
            views[view] = _view(gray, view, scale)
        data = pytesseract.image_to_data(
            views[view], output_type=pytesseract.Output.DICT, config=f"--psm {psm}"
        )
        found.extend(
            w
            for w in _words(data, scale)
            if w.confidence >= least
            or (w.confidence >= min(least, DIGIT_CONFIDENCE) and any(c.isdigit() for c in w.text))
        )
    tallest = tallest_line(image.size)
    return merge_words([w for w in found if 0 < w.height <= tallest and w.width > 0])


def _view(gray: Image.Image, view: str, scale: int) -> Image.Image:
    """The grey image as is, or normalised to its neighbourhood's mean and spread."""
    if view == "gray":
        return gray
    if view != "local":
        raise ValueError(f"unknown text view {view!r}")
    from medcurate.privacy.text_detect import LOCAL_WINDOW, local_contrast

    return local_contrast(gray, LOCAL_WINDOW * scale)  # a few glyph heights of banner text


def merge_words(words: list[OcrWord]) -> list[OcrWord]:
    """One word per place: of boxes of similar height that overlap by half the smaller one, the most
    confident reading keeps its text and takes the union of the boxes (so no pass's reach is lost);
    in reading order."""
    kept: list[OcrWord] = []
    for word in sorted(words, key=lambda w: -w.confidence):
        for index, other in enumerate(kept):
            similar = max(word.height, other.height) <= 1.5 * min(word.height, other.height)
            if similar and _overlap(word_box(word), word_box(other)) >= 0.5:
                left, top = min(word.left, other.left), min(word.top, other.top)
                right = max(word.left + word.width, other.left + other.width)
                bottom = max(word.top + word.height, other.top + other.height)
                kept[index] = OcrWord(other.text, left, top, right - left, bottom - top, other.confidence)
                break
        else:
            kept.append(word)
    return [w for line in sorted(text_lines(kept), key=lambda ws: min(w.top for w in ws)) for w in line]


def _overlap(a: Box, b: Box) -> float:
    """Intersection over the smaller box's area."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    return width * height / max(1, min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1])))


def text_lines(words: list[OcrWord]) -> list[list[OcrWord]]:
    """Words grouped into printed lines: vertical overlap of half a word's height, gaps under two heights."""
    lines: list[list[OcrWord]] = []
    for word in sorted(words, key=lambda w: w.left):
        for line in lines:
            last = line[-1]
            shared = min(word.top + word.height, last.top + last.height) - max(word.top, last.top)
            gap = word.left - (last.left + last.width)
            if shared >= 0.5 * min(word.height, last.height) and gap <= 2 * max(word.height, last.height):
                line.append(word)
                break
        else:
            lines.append([word])
    return lines


def word_box(word: OcrWord) -> Box:
    return (word.left, word.top, word.left + word.width, word.top + word.height)


def text_boxes(words: list[OcrWord]) -> list[Box]:
    """Every word that holds a letter or digit: in a DICOM, burned-in annotation is PHI by default
    (PS3.15 Burned In Annotation), so every text region is redacted, classified or not."""
    return [word_box(w) for w in words if any(c.isalnum() for c in w.text)]


GLYPH_LEVELS = 8  # grey levels at which glyphs are cut out of the image, in each polarity
_GLYPH_TALLEST = 48  # pixels: taller components are drawings, not glyphs


def glyph_lines(gray: np.ndarray) -> list[Box]:
    """Rows of glyph-sized blobs, found without OCR: at several grey levels, in both polarities,
    connected components of glyph size are grouped into lines of similar height.

    Text drawn in one value separates from its background cleanly at some level, whatever its
    contrast; the lines give the full extent of a printed field of which OCR read only part
    ("X8446" of a longer ID, or one word of a name). On their own they also fire on anatomy,
    so they are used only where a detector or OCR saw text (`extend_to_lines`)."""
    values = gray.astype(np.float32)
    low, high = np.percentile(values, 1), np.percentile(values, 99.9)
    if high - low < 8:
        return []
    blobs: list[Box] = []
    for level in np.linspace(0.1, 0.9, GLYPH_LEVELS):
        above = values >= low + level * (high - low)
        blobs += _glyphs(above) + _glyphs(~above)
    lines = []
    for left, top, right, bottom, count in _group_lines(blobs):
        height, width = bottom - top, right - left
        # three glyphs in a row, or one letter-shaped blob ("M", "F" markers stand alone)
        if 4 <= height <= 60 and (count >= 3 or (height >= 5 and 0.25 * height <= width <= 1.5 * height)):
            lines.append((left, top, right, bottom))
    return lines


def _glyphs(mask: np.ndarray) -> list[Box]:
    """Bounding boxes of the components of `mask` that could be a glyph or a few touching glyphs."""
    from scipy import ndimage

    labels, _ = ndimage.label(mask, structure=np.ones((3, 3)))
    boxes = []
    for index, window in enumerate(ndimage.find_objects(labels)):
        height, width = window[0].stop - window[0].start, window[1].stop - window[1].start
        if not 3 <= height <= _GLYPH_TALLEST or width > 8 * height + 4:
            continue
        fill = float((labels[window] == index + 1).mean())
        if fill >= 0.08 and not (fill > 0.95 and width > 3 and height > 3):  # strokes, not solid blocks
            boxes.append((window[1].start, window[0].start, window[1].stop, window[0].stop))
    return boxes


def _group_lines(blobs: list[Box]) -> list[list[int]]:
    """Blobs left to right into lines: half-height vertical overlap, heights within 2.5x, gaps
    under one height. Each line: [left, top, right, bottom, blob count].

    A line whose right edge lies further left of the current blob than any gap allowed from here
    on (blobs come in order of their left edge and are at most `_GLYPH_TALLEST` tall) can take no
    more blobs: it leaves the active list, which keeps the scan near-linear on textured images."""
    lines: list[list[int]] = []
    active: list[list[int]] = []
    for left, top, right, bottom in sorted(set(blobs)):
        height = bottom - top
        active = [line for line in active if left - line[2] <= max(_GLYPH_TALLEST, line[3] - line[1])]
        for line in active:
            line_height = line[3] - line[1]
            shared = min(bottom, line[3]) - max(top, line[1])
            gap = left - line[2]
            if (
                shared >= 0.5 * min(height, line_height)
                and max(height, line_height) <= 2.5 * min(height, line_height) + 2
                and -height <= gap <= max(3, max(height, line_height))
            ):
                line[:] = [
                    min(line[0], left),
                    min(line[1], top),
                    max(line[2], right),
                    max(line[3], bottom),
                    line[4] + 1,
                ]
                break
        else:
            line = [left, top, right, bottom, 1]
            lines.append(line)
            active.append(line)
    return lines


def extend_to_lines(boxes: list[Box], lines: list[Box]) -> list[Box]:
    """`boxes` plus every glyph line that holds at least 30% of one of them: the whole printed field."""
    reached = [line for line in lines if any(_overlap_of(box, line) >= 0.3 for box in boxes)]
    return sorted(set(boxes) | set(reached))


def _overlap_of(box: Box, other: Box) -> float:
    """Share of `box` inside `other`."""
    width = min(box[2], other[2]) - max(box[0], other[0])
    height = min(box[3], other[3]) - max(box[1], other[1])
    area = (box[2] - box[0]) * (box[3] - box[1])
    return width * height / area if width > 0 and height > 0 and area > 0 else 0.0


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


REGION_LINE_HEIGHT = 40  # pixels: Tesseract reads lines of 30-50 px best


def read_region(gray: Image.Image, box: Box) -> list[OcrWord]:
    """Tesseract's reading of one detected text line: the crop (with a margin of half its height)
    upscaled to a line height of about 40 px, read as a single line (`--psm 7`). Word boxes are
    in the crop's pixels; only the words and their confidence are used."""
    import pytesseract

    left, top, right, bottom = box
    margin = max(2, (bottom - top) // 2)
    crop = gray.crop((max(0, left - margin), max(0, top - margin), right + margin, bottom + margin))
    scale = max(1.0, min(4.0, REGION_LINE_HEIGHT / max(1, bottom - top)))
    if scale > 1:
        crop = crop.resize((round(crop.width * scale), round(crop.height * scale)), Image.Resampling.LANCZOS)
    data = pytesseract.image_to_data(crop, output_type=pytesseract.Output.DICT, config="--psm 7")
    return _words(data, scale)


def phi_line(words: list[OcrWord], spans: int, min_confidence: float) -> bool:
    """Whether a detected line is painted on a photo: it holds a PHI span (`spans` of them), a
    census-name-like word or a digit (dates, IDs, ages in layouts the analyzer may not parse), a
    patient banner field (`_banner_field`), or it could not be read confidently (no legible word,
    or one below `min_confidence`): a line goes whole, so a label "name, birth date, sex" loses no
    field that reads as harmless alone."""
    legible = [w for w in words if any(c.isalnum() for c in w.text)]
    if not legible or spans or _banner_field(legible):
        return True
    return any(
        w.confidence < min_confidence or _name_like(w.text) or any(c.isdigit() for c in w.text)
        for w in legible
    )


# Labels of a patient banner's fields and the values that stand alone in one (a sex marker):
# a line carrying them is part of a patient's burned-in annotation, PHI-bearing as a whole
# (PS3.15 Annex E, Burned In Annotation), whatever its value reads as on its own.
BANNER_LABELS = frozenset(
    {"name", "patient", "pat", "sex", "gender", "dob", "born", "birth", "age", "yrs", "mrn", "pid", "id",
     "acc", "accession", "study", "exam", "m", "f", "male", "female"}
)  # fmt: skip
SHORTEST_READING = 3  # alphanumerics: a shorter reading of a whole detected line is not a reading


def _banner_field(words: list[OcrWord]) -> bool:
    """Whether a detected line reads as a patient banner field (a label word or a lone sex marker),
    or reads as too little to judge: Tesseract returns one or two characters for a line of
    faint text as readily as for a short label, so such a line is painted."""
    tokens = [t for w in words for t in re.split(r"[^a-z0-9]+", w.text.lower()) if t]
    if sum(len(t) for t in tokens) < SHORTEST_READING:
        return True
    return any(t in BANNER_LABELS for t in tokens)


def photo_redaction_boxes(
    image: Image.Image, deidentifier: TextDeidentifier, min_confidence: float
) -> list[Box]:
    """Boxes to paint on a photo: every text line the detector finds (`detect_text`), read by
    Tesseract and kept where `phi_line` says so, grown to the glyph lines it sits on. Photos carry
    legitimate text (chart labels, scale bars), so unlike a DICOM banner a line that reads as
    harmless stays."""
    from medcurate.privacy.text_detect import detect_text

    regions = detect_text(image)
    if not regions:
        return []
    gray = image.convert("L")
    readings = [read_region(gray, box) for box in regions]
    results = deidentifier.deidentify_batch([" ".join(w.text for w in words) for words in readings])
    painted = [
        box
        for box, words, result in zip(regions, readings, results, strict=True)
        if phi_line(words, len(result.spans), min_confidence)
    ]
    return extend_to_lines(painted, glyph_lines(np.asarray(gray))) if painted else []


def _name_like(word: str) -> bool:
    """Burned-in annotations carry names without context ("QUARTERFIELD WILHELMINA"): a census
    name or a long word that is not English is boxed on its own. A word is split at non-letters
    first: DICOM writes a person name as FAMILY^GIVEN, which OCR reads with "^", "*" or "~"."""
    from medcurate.privacy.vocab import NOT_NAMES, is_english, is_name_word

    for token in re.split(r"[^a-z]+", word.lower()):
        if len(token) < 4 or token in NOT_NAMES or is_english(token):
            continue
        if is_name_word(token) or len(token) >= 6:
            return True
    return False


def box_mask(size: tuple[int, int], boxes: list[tuple[int, int, int, int]], margin: int = 2) -> Image.Image:
    """The pixels `paint_boxes` fills, as a mode-L mask (255 painted) of `size` (width, height)."""
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    for left, top, right, bottom in boxes:
        draw.rectangle((left - margin, top - margin, right + margin, bottom + margin), fill=255)
    return mask


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
            boxes = photo_redaction_boxes(image, deidentifier, config.ocr_min_confidence)
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
