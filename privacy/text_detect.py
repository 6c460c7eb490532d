"""A trained text detector for burned-in text: PP-OCRv4's DBNet text-region model run with ONNX Runtime.

OCR engines find text by recognising it, so a field they cannot read (low contrast over anatomy,
8-px banner glyphs, a lone sex marker) is a field they do not find. A detector trained to tell
printed lines from image texture scores every pixel for "inside a text line" without reading it.
The model is the one the `rapidocr-onnxruntime` wheel ships (PaddleOCR's PP-OCRv4 detection
network, Apache-2.0); only its file is used, so none of that package's own dependencies (OpenCV
with GUI libraries, Shapely, pyclipper) are needed, and nothing is downloaded at run time.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import onnxruntime

Box = tuple[int, int, int, int]

MODEL_PACKAGE = "rapidocr_onnxruntime"
MODEL_FILE = "models/ch_PP-OCRv4_det_infer.onnx"
# DBNet's post-processing: pixels above PIXEL_THRESHOLD form a region, a region is kept when its
# mean score reaches REGION_THRESHOLD, and the shrunk kernel the network predicts is grown back by
# UNCLIP_RATIO (area x ratio / perimeter). PaddleOCR publishes 0.3 and 0.5 for document photos;
# faint banner text over anatomy scores lower, and 0.1 / 0.2 (chosen on generated sets of seeds 5
# and 11) found more of it without more texture regions.
PIXEL_THRESHOLD = 0.1
REGION_THRESHOLD = 0.2
UNCLIP_RATIO = 1.6
# Inputs are upscaled until the shorter side reaches DETECT_SHORT_SIDE, by 2x at least and 8x at
# most (banner glyphs of 8-12 px need about 20 px to be scored as text), and never past
# DETECT_LONG_SIDE on the longer side (network cost grows with the pixel count).
DETECT_SHORT_SIDE = 512
DETECT_LONG_SIDE = 4096
# Thumbnails whose upscaled input is still at most TINY_INPUT px on its longer side (128 px and
# smaller frames) are also scored at twice that scale, the boxes of both merged: glyphs of a few
# pixels blur into each other when upscaled 8x, and a lone letter there scored as nothing at one
# scale and as text at the other (seeds 5 and 11). Such inputs are small, so the pass is cheap.
TINY_INPUT = 512
# Inputs of more than WHOLE_PIXELS (a 1,024-px DICOM frame upscaled twice) are scored in tiles of
# TILE_SIDE pixels overlapping by TILE_OVERLAP (multiples of the network's stride of 32), stitched
# by their maximum: memory stays bounded (a whole 4,096-px frame took gigabytes). Smaller inputs
# are scored whole, as the network was trained: a tile edge through a line weakens its score.
WHOLE_PIXELS = 2048 * 2048
TILE_SIDE = 512
TILE_OVERLAP = 192
# The views the network scores: the grey image and its inverse (the network is surer of
# dark-on-light text in some fonts and of light-on-dark in others), and the grey image after a
# local contrast stretch (each pixel against the mean and spread of a LOCAL_WINDOW neighbourhood,
# a few banner glyph heights): faint text over anatomy or texture, whose line the plain views
# score in broken pieces below REGION_THRESHOLD, stands out there as much as a banner's white
# text. On seeds 5 and 11 the stretched view's inverse ("local_inverted") added nothing.
VIEWS = ("gray", "inverted", "local")
LOCAL_WINDOW = 15
# A region's box is widened on each side by this many times its height: the network's score fades
# at a line's ends over textured background, and the last glyph of a field is as identifying as
# the first. In a DICOM every line found is painted, so ends are cheap to cover: DICOM_END_PAD
# (chosen on seeds 5 and 11: the last misses at line ends went, collateral stayed under 3%).
END_PAD = 1.0
DICOM_END_PAD = 2.0


def model_path() -> Path:
    """The detection model inside the installed wheel, found without importing that package."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / MODEL_FILE
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"text detection model {MODEL_FILE} of {MODEL_PACKAGE} (install requirements/models.txt)"
    )


@lru_cache(maxsize=1)
def _session() -> onnxruntime.InferenceSession:
    """One session per process. Threads follow OMP_NUM_THREADS where set (ONNX Runtime's CPU build
    does not read it itself), so a pipeline running one worker per core does not oversubscribe."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    threads = int(os.environ.get("OMP_NUM_THREADS") or 0)
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # No memory arena: it keeps the largest input's buffers for the life of the process.
    options.enable_cpu_mem_arena = False
    return onnxruntime.InferenceSession(str(model_path()), options, providers=["CPUExecutionProvider"])


def tallest_line(size: tuple[int, int]) -> int:
    """Pixels: a text line taller than a fifth of the image (32 px at least) is a shape or a
    drawing (a ring reads as a large "O"), not burned-in annotation."""
    return max(32, min(size) // 5)


def detect_scale(size: tuple[int, int]) -> float:
    """The upscaling factor for an image of `size` (width, height)."""
    scale = min(8.0, max(2.0, DETECT_SHORT_SIDE / max(1, min(size))))
    return max(1.0, min(scale, DETECT_LONG_SIDE / max(size)))


def text_probability(image: Image.Image, scale: float) -> tuple[np.ndarray, float, float]:
    """The network's per-pixel text score for `image` resized by `scale` (sides rounded to the
    network's stride of 32), with the factors that map score-map pixels back to the image."""
    rgb = image.convert("RGB")
    width = max(32, round(rgb.width * scale / 32) * 32)
    height = max(32, round(rgb.height * scale / 32) * 32)
    pixels = np.asarray(rgb.resize((width, height), Image.Resampling.BILINEAR))
    return _tiled_scores(pixels), rgb.width / width, rgb.height / height


def _tile_starts(length: int, side: int) -> list[int]:
    if length <= side:
        return [0]
    return [*range(0, length - side, side - TILE_OVERLAP), length - side]


def _tiled_scores(pixels: np.ndarray) -> np.ndarray:
    """The network's score map of an (height, width, 3) uint8 input, one tile at a time (each tile
    scaled to [-1, 1] on its own, so no float copy of the whole input is held)."""
    session = _session()
    height, width = pixels.shape[:2]
    side = max(height, width) if height * width <= WHOLE_PIXELS else TILE_SIDE
    scores = np.zeros((height, width), dtype=np.float32)
    for top in _tile_starts(height, side):
        for left in _tile_starts(width, side):
            tile = pixels[top : top + side, left : left + side].astype(np.float32) / 127.5 - 1.0
            batch = np.ascontiguousarray(tile.transpose(2, 0, 1)[np.newaxis])
            found = session.run(None, {"x": batch})[0][0, 0]
            window = scores[top : top + tile.shape[0], left : left + tile.shape[1]]
            np.maximum(window, found, out=window)
    return scores


def score_regions(scores: np.ndarray) -> list[tuple[float, float, float, float]]:
    """Boxes (left, top, right, bottom, in score-map pixels) of the text regions of a score map,
    grown back from the network's shrunk kernels."""
    from scipy import ndimage

    mask = ndimage.binary_dilation(scores > PIXEL_THRESHOLD, np.ones((2, 2), dtype=bool))
    labels, _ = ndimage.label(mask)
    regions = []
    for index, window in enumerate(ndimage.find_objects(labels)):
        inside = labels[window] == index + 1
        if inside.sum() < 3 or float(scores[window][inside].mean()) < REGION_THRESHOLD:
            continue
        top, bottom = window[0].start, window[0].stop
        left, right = window[1].start, window[1].stop
        grow = (bottom - top) * (right - left) * UNCLIP_RATIO / (2 * ((bottom - top) + (right - left)))
        regions.append((left - grow, top - grow, right + grow, bottom + grow))
    return regions


def local_contrast(gray: Image.Image, size: int = LOCAL_WINDOW) -> Image.Image:
    """`gray` with each pixel normalised to the mean and spread of its `size` neighbourhood: text
    of a few grey levels over a smooth background gets the contrast of a banner's."""
    from scipy.ndimage import uniform_filter

    # In place, a few image-sized float arrays at a time: a 30-megapixel photo is scored whole.
    values = np.asarray(gray, dtype=np.float32)
    mean = uniform_filter(values, size)
    spread = uniform_filter(np.square(values), size)
    spread -= np.square(mean)
    np.maximum(spread, 0.0, out=spread)
    np.sqrt(spread, out=spread)
    spread += 8.0  # the floor keeps flat noise from becoming text
    values -= mean
    del mean
    values /= spread
    del spread
    values *= 48.0
    values += 128.0
    np.clip(values, 0, 255, out=values)
    return Image.fromarray(values.astype(np.uint8), "L")


def _views(gray: Image.Image, views: tuple[str, ...]) -> Iterator[Image.Image]:
    """The images of `views` (names of VIEWS), one at a time."""
    local = local_contrast(gray) if any(v.startswith("local") for v in views) else None
    for view in views:
        base = local if view.startswith("local") else gray
        if base is None or view not in VIEWS:
            raise ValueError(f"unknown detector view {view!r}")
        yield Image.fromarray(255 - np.asarray(base)) if view.endswith("inverted") else base


def detect_text(image: Image.Image, views: tuple[str, ...] = VIEWS, end_pad: float = END_PAD) -> list[Box]:
    """Boxes of every text line the detector finds in any of `views` (VIEWS), at `detect_scale`
    (and twice that for a TINY_INPUT), in `image`'s pixels: each box widened by `end_pad` line
    heights at both ends and clipped to the image; lines taller than `tallest_line` are dropped."""
    gray = image.convert("L")
    scale = detect_scale(gray.size)
    scales = [scale, 2 * scale] if max(gray.size) * scale <= TINY_INPUT else [scale]
    tallest = tallest_line(gray.size)
    boxes: set[Box] = set()
    for view, factor in itertools.product(_views(gray, views), scales):
        scores, x_factor, y_factor = text_probability(view, factor)
        for left, top, right, bottom in score_regions(scores):
            left, right = left * x_factor, right * x_factor
            top, bottom = top * y_factor, bottom * y_factor
            if bottom - top > tallest:
                continue
            pad = end_pad * (bottom - top)
            boxes.add(
                (
                    max(0, int(left - pad)),
                    max(0, int(top)),
                    min(gray.width, int(np.ceil(right + pad))),
                    min(gray.height, int(np.ceil(bottom))),
                )
            )
    return _drop_contained(boxes)


def _drop_contained(boxes: set[Box]) -> list[Box]:
    """Boxes not lying wholly inside another (the two views often find the same line)."""
    ordered = sorted(boxes, key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))
    kept: list[Box] = []
    for box in ordered:
        if not any(k[0] <= box[0] and k[1] <= box[1] and k[2] >= box[2] and k[3] >= box[3] for k in kept):
            kept.append(box)
    return sorted(kept, key=lambda b: (b[1], b[0]))
