"""A generated burned-in text set: invented names, dates, IDs and age/sex markers rendered onto real
DICOM pixels and photo-like pixels, with the rendered text boxes as gold.

Burned-in text evaluation needs gold boxes, and real images with annotated burned-in PHI are few
and cannot be shipped. Rendering known text onto real pixels gives as many boxes as needed, in the
conditions that defeat OCR: banner text of 8-14 px, light on dark and dark on light, low contrast,
bitmap and vector fonts, text over anatomy. Everything is drawn from a seeded generator, so a set
is the same on every machine that has the same fonts (fonts-dejavu, and Pillow's built-in fonts).

Gold: for each rendered string, the tight box of its ink (every pixel the glyphs touched) grown by
`GOLD_HALO` pixels, the margin any redaction box needs; `ink` labels each ink pixel with the index
of its box + 1 so that recall can be measured on the glyphs themselves.
"""

from __future__ import annotations

import copy
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw, ImageFont

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

GOLD_HALO = 2
RECALL_INK = 0.99  # a gold box is caught when this share of its ink is painted
INK_ALPHA = 64  # anti-aliased fringe below a quarter of full strength carries no legible shape
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONT_FILES = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansMono-Bold.ttf",
    "DejaVuSansCondensed.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSerifCondensed-Italic.ttf",
    "DejaVuSans-Oblique.ttf",
)
# Real pixel sources from the pydicom wheels (uncompressed, no burned-in text of their own).
DICOM_SOURCES = (
    "CT_small.dcm",
    "MR_small.dcm",
    "693_UNCR.dcm",
    "MR2_UNCR.dcm",
    "eCT_Supplemental.dcm",
    "JPEG2000_UNC.dcm",
    "RG3_UNCR.dcm",
    "emri_small.dcm",
    "examples_overlay.dcm",
)
PHOTO_SOURCES = ("SC_rgb.dcm", "color-px.dcm")

_ONSETS = ("b", "br", "c", "ch", "d", "f", "g", "gr", "h", "j", "k", "l", "m", "n", "p", "r", "s",
           "st", "t", "tr", "v", "w", "z", "th", "qu", "sh")  # fmt: skip
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ea", "ie", "ou", "y")
_CODAS = ("", "", "n", "r", "l", "s", "th", "ck", "m", "nd", "rt", "x", "ll", "ss")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


@dataclass(frozen=True)
class GoldBox:
    left: int
    top: int
    right: int
    bottom: int
    text: str
    kind: str


@dataclass
class BurnedInCase:
    """One image: `pixels` as stored (DICOM frame values or 8-bit RGB), its gold boxes and ink labels."""

    name: str
    kind: str  # "dicom" or "photo"
    pixels: np.ndarray
    boxes: list[GoldBox] = field(default_factory=list)
    ink: np.ndarray | None = None
    dataset: Dataset | None = None  # the DICOM dataset carrying `pixels`, for the DICOM path

    def image(self) -> Image.Image:
        """The photo as a PIL image (photo cases only)."""
        return Image.fromarray(self.pixels)


def invented_name(rng: random.Random) -> str:
    """A pronounceable invented word: no real person's name is needed to test OCR."""
    syllables = rng.choice((2, 2, 3))
    word = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables))
    return (word + rng.choice(_CODAS)).capitalize()


def _date(rng: random.Random) -> str:
    year, month, day = rng.randint(1931, 2024), rng.randint(1, 12), rng.randint(1, 28)
    return rng.choice(
        (
            f"{month:02d}/{day:02d}/{year}",
            f"{year}-{month:02d}-{day:02d}",
            f"{day:02d}-{_MONTHS[month - 1]}-{year}",
            f"{year}{month:02d}{day:02d}",
            f"{day:02d}.{month:02d}.{year}",
        )
    )


def phi_text(rng: random.Random) -> tuple[str, str]:
    """(text, kind) of one burned-in field, in the layouts scanners and viewers print."""
    kind = rng.choice(("name", "name", "date", "id", "agesex", "datetime"))
    first, last = invented_name(rng), invented_name(rng)
    if kind == "name":
        text = rng.choice(
            (
                f"{last.upper()}^{first.upper()}",
                f"{last}, {first}",
                f"{first.upper()} {last.upper()}",
                f"Name: {last} {first}",
                f"{last.upper()} {first[0]}.",
            )
        )
    elif kind == "date":
        text = rng.choice(("", "DOB: ", "Study ", "")) + _date(rng)
    elif kind == "datetime":
        text = f"{_date(rng)} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
    elif kind == "id":
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(6, 10)))
        text = rng.choice(("ID: ", "MRN ", "Acc# ", "PID ", "")) + rng.choice(("", "", "A", "X")) + digits
    else:
        age, sex = rng.randint(1, 99), rng.choice("MF")
        text = rng.choice((f"{age:03d}Y {sex}", f"{age}Y {sex}", f"Sex: {sex}", sex, f"{age} yrs"))
    return text, kind


def _fonts(size: int) -> list[ImageFont.FreeTypeFont | ImageFont.ImageFont]:
    return [ImageFont.truetype(str(FONT_DIR / name), size) for name in FONT_FILES] + [
        ImageFont.load_default(size)
    ]


def _font(rng: random.Random, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A vector font at `size`, or (for banner sizes) Pillow's fixed bitmap font about once in eight."""
    if size <= 12 and rng.random() < 0.125:
        return ImageFont.load_default_imagefont()
    return rng.choice(_fonts(size))


def _ink(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> np.ndarray:
    """The glyph coverage (0-255) of `text`, cropped to its ink."""
    left, top, right, bottom = font.getbbox(text)
    canvas = Image.new("L", (right - left + 4, bottom - top + 4), 0)
    ImageDraw.Draw(canvas).text((2 - left, 2 - top), text, fill=255, font=font)
    alpha = np.array(canvas)
    rows, cols = np.nonzero(alpha)
    return alpha[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


def _place(
    rng: random.Random, taken: np.ndarray, shape: tuple[int, int], corner: str, cursor: dict[str, int]
) -> tuple[int, int] | None:
    """Top-left of a (h, w) block in a banner corner (stacked like scanner banners) or anywhere."""
    height, width = shape
    rows, cols = taken.shape
    if height + 2 * GOLD_HALO + 2 > rows or width + 2 * GOLD_HALO + 2 > cols:
        return None
    pad = GOLD_HALO + 1
    for _ in range(40):
        if corner == "overlay":
            top, left = rng.randint(pad, rows - height - pad), rng.randint(pad, cols - width - pad)
        else:
            step = cursor.get(corner, pad)
            top = step if corner.startswith("top") else rows - pad - height - (step - pad)
            left = (
                pad + rng.randint(0, 3) if corner.endswith("left") else cols - pad - width - rng.randint(0, 3)
            )
            cursor[corner] = step + height + max(3, height // 3) + 2 * GOLD_HALO
            if top < pad or top + height + pad > rows:
                return None
        window = taken[
            top - GOLD_HALO - 1 : top + height + GOLD_HALO + 1,
            left - GOLD_HALO - 1 : left + width + GOLD_HALO + 1,
        ]
        if not window.any():
            return top, left
        if corner != "overlay":
            return None
    return None


def _blend(pixels: np.ndarray, alpha: np.ndarray, top: int, left: int, value: np.ndarray | float) -> None:
    """Text of `value` composited over the pixels with the glyphs' coverage (anti-aliased edges)."""
    height, width = alpha.shape
    region = pixels[top : top + height, left : left + width].astype(np.float64)
    weight = alpha.astype(np.float64) / 255.0
    if region.ndim == 3:
        weight = weight[..., None]
    mixed = region * (1.0 - weight) + np.asarray(value, dtype=np.float64) * weight
    pixels[top : top + height, left : left + width] = np.rint(mixed).astype(pixels.dtype)


def _text_value(
    rng: random.Random, region: np.ndarray, low: float, high: float, style: str
) -> np.ndarray | float:
    """Ink value for one string: light on dark, dark on light, or low contrast against the local mean."""
    local = float(region.mean())
    span = high - low
    if style == "low":
        delta = rng.uniform(0.18, 0.3) * span
        value = local + delta if local + delta <= high else local - delta
    elif style == "light":
        value = high - rng.uniform(0.0, 0.1) * span
    else:
        value = low + rng.uniform(0.0, 0.1) * span
    if region.ndim == 3:
        tint = np.array([rng.uniform(0.85, 1.0) for _ in range(region.shape[2])])
        return np.clip(value * tint if style != "dark" else np.full(region.shape[2], value), low, high)
    return value


def _render_texts(
    rng: random.Random, pixels: np.ndarray, count: int, sizes: tuple[int, int], corners: tuple[str, ...]
) -> tuple[list[GoldBox], np.ndarray]:
    """Draw up to `count` strings onto `pixels` (in place); returns their gold boxes and ink labels."""
    rows, cols = pixels.shape[:2]
    taken = np.zeros((rows, cols), dtype=bool)
    ink = np.zeros((rows, cols), dtype=np.int32)
    low, high = float(pixels.min()), float(pixels.max())
    boxes: list[GoldBox] = []
    cursor: dict[str, int] = {}
    for _ in range(count * 3):
        if len(boxes) == count:
            break
        text, kind = phi_text(rng)
        size = rng.randint(*sizes)
        alpha = _ink(text, _font(rng, size))
        corner = rng.choice(corners)
        spot = _place(rng, taken, alpha.shape, corner, cursor)
        if spot is None:
            continue
        top, left = spot
        height, width = alpha.shape
        style = (
            rng.choice(("light", "light", "dark", "low"))
            if corner != "overlay"
            else rng.choice(("light", "dark", "low"))
        )
        region = pixels[top : top + height, left : left + width]
        background = float(region.mean())
        faint = style != "low" and abs(background - (high if style == "light" else low)) < 0.4 * (high - low)
        if faint or (style == "dark" and corner != "overlay" and rng.random() < 0.5):
            # a label strip behind the text, as viewers print: text never vanishes into its background
            strip = (slice(top - 1, top + height + 1), slice(left - 1, left + width + 1))
            shade = low + 0.05 * (high - low) if style == "light" else high - 0.05 * (high - low)
            pixels[strip] = np.asarray(shade).astype(pixels.dtype)
        _blend(pixels, alpha, top, left, _text_value(rng, region, low, high, style))
        glyphs = alpha >= INK_ALPHA
        ink[top : top + height, left : left + width][glyphs] = len(boxes) + 1
        box = GoldBox(
            max(0, left - GOLD_HALO),
            max(0, top - GOLD_HALO),
            min(cols, left + width + GOLD_HALO),
            min(rows, top + height + GOLD_HALO),
            text,
            kind,
        )
        taken[box.top : box.bottom, box.left : box.right] = True
        boxes.append(box)
    return boxes, ink


def _dicom_frame(name: str) -> tuple[Dataset, np.ndarray]:
    """The test file's dataset and its first frame, with at most 1024 rows/columns (a crop: real pixels)."""
    import pydicom
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name)
    if path is None:
        raise FileNotFoundError(f"pydicom test file {name} (install pydicom-data)")
    dataset = pydicom.dcmread(path)
    array = dataset.pixel_array
    if int(dataset.get("NumberOfFrames") or 1) > 1:
        array = array[0]
    return dataset, np.ascontiguousarray(array[:1024, :1024])


def _dicom_case(rng: random.Random, name: str, index: int) -> BurnedInCase:
    from pydicom.uid import ExplicitVRLittleEndian

    source, frame = _dicom_frame(name)
    pixels = frame.copy()
    small = min(pixels.shape[:2]) < 200
    count = 2 if min(pixels.shape[:2]) < 100 else rng.randint(4, 8)
    sizes = (8, 10) if small else rng.choice(((8, 14), (10, 16), (12, 24)))
    corners = ("top_left", "top_right", "bottom_left", "bottom_right", "overlay")
    boxes, ink = _render_texts(rng, pixels, count, sizes, corners)
    dataset = copy.deepcopy(source)
    for keyword in ("NumberOfFrames", "FrameIncrementPointer"):
        if keyword in dataset:
            delattr(dataset, keyword)
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    bits = int(dataset.get("BitsStored") or pixels.dtype.itemsize * 8)
    dataset.set_pixel_data(pixels, str(dataset.PhotometricInterpretation), bits, generate_instance_uid=False)
    names = [b.text for b in boxes if b.kind == "name"]
    dataset.PatientName = names[0].replace(", ", "^").replace(" ", "^") if names else "Anonymous"
    dataset.BurnedInAnnotation = "YES"
    return BurnedInCase(f"dicom{index:03d}_{Path(name).stem}", "dicom", pixels, boxes, ink, dataset)


def _photo_background(rng: random.Random, index: int) -> np.ndarray:
    """Photo-like RGB pixels: an upscaled colour DICOM, or a lit, textured scene of soft shapes."""
    if index % 3 == 0:
        _, frame = _dicom_frame(PHOTO_SOURCES[(index // 3) % len(PHOTO_SOURCES)])
        factor = max(1, 400 // max(frame.shape[:2]))
        image = Image.fromarray(frame.astype(np.uint8)).resize(
            (frame.shape[1] * factor, frame.shape[0] * factor), Image.Resampling.BICUBIC
        )
        return np.array(image.convert("RGB"))
    height, width = rng.choice(((360, 480), (480, 640), (300, 300), (600, 800)))
    np_rng = np.random.default_rng(rng.randrange(2**32))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    base = np.stack(
        [np_rng.uniform(40, 200) + np_rng.uniform(-60, 60) * (xx / width) for _ in range(3)], axis=-1
    )
    image = Image.fromarray(np.clip(base + 0 * yy[..., None], 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(3, 9)):
        x, y = rng.randrange(width), rng.randrange(height)
        rx, ry = rng.randint(20, width // 3), rng.randint(20, height // 3)
        draw.ellipse((x - rx, y - ry, x + rx, y + ry), fill=tuple(rng.randrange(256) for _ in range(3)))
    noisy = np.array(image).astype(np.float64) + np_rng.normal(0, 6, (height, width, 3))
    return np.clip(noisy, 0, 255).astype(np.uint8)


def _photo_case(rng: random.Random, index: int) -> BurnedInCase:
    pixels = _photo_background(rng, index)
    sizes = rng.choice(((10, 16), (14, 28), (18, 36)))
    corners = ("top_left", "top_right", "bottom_left", "bottom_right", "overlay", "overlay")
    boxes, ink = _render_texts(rng, pixels, rng.randint(3, 6), sizes, corners)
    return BurnedInCase(f"photo{index:03d}", "photo", pixels, boxes, ink)


def generate(count: int = 40, seed: int = 11, photo_share: float = 0.3) -> Iterator[BurnedInCase]:
    """`count` cases, DICOM sources in turn and about `photo_share` of photos, the same for a seed."""
    rng = random.Random(seed)
    photos = round(count * photo_share)
    for index in range(count):
        if index % max(1, round(count / max(photos, 1))) == 1 and photos > 0:
            photos -= 1
            yield _photo_case(rng, index)
        else:
            yield _dicom_case(rng, DICOM_SOURCES[index % len(DICOM_SOURCES)], index)


def score_boxes(case: BurnedInCase, boxes: list[tuple[int, int, int, int]], margin: int = 2) -> Counter[str]:
    """Counts for one case painted with `boxes` (grown by `margin`, as `paint_boxes` does): gold
    boxes caught (>= RECALL_INK of their ink painted), per kind, painted pixels, painted pixels
    outside every gold box, and image pixels."""
    from medcurate.privacy.images import box_mask

    rows, cols = case.pixels.shape[:2]
    painted = np.array(box_mask((cols, rows), boxes, margin)) > 0
    gold = np.zeros((rows, cols), dtype=bool)
    result: Counter[str] = Counter()
    for index, box in enumerate(case.boxes):
        gold[box.top : box.bottom, box.left : box.right] = True
        caught = bool(painted[case.ink == index + 1].mean() >= RECALL_INK)
        result["caught"] += caught
        result[f"caught:{box.kind}"] += caught
        result[f"total:{box.kind}"] += 1
    result["gold"] = len(case.boxes)
    result["painted"] = int(painted.sum())
    result["outside"] = int((painted & ~gold).sum())
    result["pixels"] = rows * cols
    return result
