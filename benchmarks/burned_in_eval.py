"""Burned-in text: box recall, collateral and speed on the generated set, for the text detector and
the OCR-only paths it replaced, in one process on the same cases.

    .venv/bin/python benchmarks/burned_in_eval.py [--count 40] [--seeds 23,29] [--real]

The set (privacy/burned_in_set.py) renders invented names, dates, IDs and age/sex markers onto
real DICOM pixels (pydicom test files) and photo-like pixels, with the text boxes as gold. Paths:

- detector (current): DICOM files through `DicomDeidentifier` (every line the text detector finds
  is painted), photos through `photo_redaction_boxes` (detected lines read by Tesseract, painted
  when they hold PHI, a name-like word, a digit, or nothing legible);
- ocr: the finder the detector replaced, three upscaled Tesseract passes widened to glyph lines
  (every word in a DICOM; PHI, name-like, digit-bearing words and their lines on a photo);
- previous: one Tesseract pass (sparse text), PHI-classified words plus header-value words and
  long digit runs (DICOM), PHI-classified words (photos).

The detector's thresholds, views, scales, end padding and photo line rules were chosen on seeds 5
and 11 (40 images each); the default report is on seeds 23 and 29, never used for tuning. A gold box counts as caught when at
least RECALL_INK of its ink (the pixels its glyphs covered) is painted. Collateral is reported
two ways: the share of painted pixels outside every gold box, and those pixels as a share of the
whole image. images/s is for one process on one thread (Tesseract and ONNX Runtime). `--real`
also times the paths on real DICOM files (no gold boxes there: speed and box counts only).
Prints figures only, never rendered or recognised text.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_THREAD_LIMIT"):
    os.environ.setdefault(_variable, "1")  # one process on one core, Tesseract included


if TYPE_CHECKING:
    from PIL import Image
    from pydicom.dataset import Dataset

    from medcurate.privacy.burned_in_set import BurnedInCase
    from medcurate.privacy.config import DeidConfig
    from medcurate.privacy.images import OcrWord
    from medcurate.privacy.text import TextDeidentifier

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

Box = tuple[int, int, int, int]


def previous_dicom(dataset: Dataset, text: TextDeidentifier, config: DeidConfig) -> list[Box]:
    """The DICOM pixel path as it was: one pass, classified words, header values, digit runs."""
    from medcurate.privacy.dicom import _frames, _render, header_values
    from medcurate.privacy.images import ocr_words, phi_boxes

    words = ocr_words(_render(_frames(dataset)[0]))
    found = set(phi_boxes(words, text, config.ocr_min_confidence))
    return sorted(found | set(previous_header_boxes(words, header_values(dataset))))


def previous_header_boxes(words: list[OcrWord], values: set[str]) -> list[Box]:
    """The previous path's extra DICOM rule: burned-in copies of header values ("PATIENTFI..." for
    PATIENTFIVE) and runs of six or more digits."""
    normal = {re.sub(r"[^0-9a-z]", "", v.lower()) for v in values}
    normal = {v for v in normal if len(v) >= 3}
    boxes = []
    for word in words:
        token = re.sub(r"[^0-9a-z]", "", word.text.lower())
        if len(token) < 3:
            continue
        if re.search(r"\d{6,}", token) or any(token in v or (len(v) >= 4 and v in token) for v in normal):
            boxes.append((word.left, word.top, word.left + word.width, word.top + word.height))
    return boxes


def current_dicom(dataset: Dataset, text: TextDeidentifier, config: DeidConfig) -> list[Box]:
    """The DICOM path as `medcurate deid dicom` runs it (header profile, detector, painting)."""
    from medcurate.privacy.dicom import DicomDeidentifier

    result = DicomDeidentifier(config, text).deidentify(dataset)
    if result.ocr != "checked":
        raise RuntimeError(f"DICOM OCR {result.ocr}")
    return [tuple(b) for b in result.boxes]


def ocr_passes_boxes(rendered: Image.Image) -> list[Box]:
    """The OCR-only text finder that the detector replaced: every word of three Tesseract passes,
    widened to the glyph lines it sits on."""
    import numpy as np

    from medcurate.privacy.images import extend_to_lines, find_text, glyph_lines, text_boxes

    words = text_boxes(find_text(rendered))
    return extend_to_lines(words, glyph_lines(np.asarray(rendered.convert("L")))) if words else []


def ocr_passes_dicom(dataset: Dataset, text: TextDeidentifier, config: DeidConfig) -> list[Box]:
    """`current_dicom` with the OCR-only finder in the detector's place: same header work, same
    painting, so the difference in time is the finder's."""
    from unittest import mock

    with mock.patch("medcurate.privacy.dicom.burned_in_boxes", ocr_passes_boxes):
        return current_dicom(dataset, text, config)


def previous_photo(image: Image.Image, text: TextDeidentifier, config: DeidConfig) -> list[Box]:
    from medcurate.privacy.images import ocr_words, phi_boxes

    return phi_boxes(ocr_words(image), text, config.ocr_min_confidence)


def ocr_passes_photo(image: Image.Image, text: TextDeidentifier, config: DeidConfig) -> list[Box]:
    """The photo path of the OCR-only finder: PHI, name-like, unreadable and digit-bearing words of
    the three passes, each word's whole printed line (OCR's and the glyph lines')."""
    import numpy as np

    from medcurate.privacy.images import (
        extend_to_lines,
        find_text,
        glyph_lines,
        phi_boxes,
        text_lines,
        word_box,
    )

    words = find_text(image)
    flagged = set(phi_boxes(words, text, config.ocr_min_confidence))
    boxes = set(flagged)
    for line in text_lines(words):
        if any(word_box(w) in flagged for w in line):
            boxes.update(word_box(w) for w in line)
    boxes.update(word_box(w) for w in words if any(c.isdigit() for c in w.text))
    return extend_to_lines(sorted(boxes), glyph_lines(np.asarray(image.convert("L")))) if boxes else []


def current_photo(image: Image.Image, text: TextDeidentifier, config: DeidConfig) -> list[Box]:
    """The photo path as `scrub_image_sample` runs it."""
    from medcurate.privacy.images import photo_redaction_boxes

    return photo_redaction_boxes(image, text, config.ocr_min_confidence)


def run_path(
    cases: list[BurnedInCase],
    text: TextDeidentifier,
    config: DeidConfig,
    dicom: Callable[..., list[Box]],
    photo: Callable[..., list[Box]],
) -> tuple[Counter[str], float, list[str]]:
    from medcurate.privacy.burned_in_set import score_boxes

    totals: Counter[str] = Counter()
    missed: list[str] = []
    started = time.perf_counter()
    for case in cases:
        boxes = (
            dicom(case.dataset, text, config) if case.kind == "dicom" else photo(case.image(), text, config)
        )
        scored = score_boxes(case, boxes)
        totals.update(scored)
        totals[f"gold:{case.kind}"] += scored["gold"]
        totals[f"caught_in:{case.kind}"] += scored["caught"]
        if scored["caught"] < scored["gold"]:
            missed.append(f"{case.name}:{scored['gold'] - scored['caught']:.0f}")
    return totals, time.perf_counter() - started, missed


def report(label: str, totals: Counter[str], elapsed: float, images: int) -> None:
    recall = totals["caught"] / max(totals["gold"], 1)
    outside = totals["outside"] / max(totals["painted"], 1)
    of_image = totals["outside"] / max(totals["pixels"], 1)
    kinds = sorted(k.split(":", 1)[1] for k in totals if k.startswith("total:"))
    per_kind = ", ".join(f"{k} {totals['caught:' + k] / totals['total:' + k]:.3f}" for k in kinds)
    per_source = ", ".join(
        f"{s} {totals['caught_in:' + s] / totals['gold:' + s]:.3f} ({totals['gold:' + s]:.0f})"
        for s in ("dicom", "photo")
        if totals["gold:" + s]
    )
    print(
        f"{label:9s} box recall {recall:.4f} ({totals['caught']:.0f}/{totals['gold']:.0f}); "
        f"collateral {outside:.4f} of painted, {of_image:.5f} of image; {images / elapsed:.2f} images/s"
    )
    print(f"          by kind: {per_kind}; by source: {per_source}")


PATHS: dict[str, tuple[Callable[..., list[Box]], Callable[..., list[Box]]]] = {
    "previous": (previous_dicom, previous_photo),
    "ocr": (ocr_passes_dicom, ocr_passes_photo),
    "detector": (current_dicom, current_photo),
}


def real_dicoms(text: TextDeidentifier, config: DeidConfig, paths: list[str]) -> None:
    """Speed of each path on real DICOM files: the deid_data set of ../shared/data (burned-in PHI,
    photos of up to 3072 px among them) and the pydicom test files the generated set draws on
    (no text of their own). Boxes painted per set; no gold boxes here."""
    from pydicom.data import get_testdata_file

    from medcurate.privacy.burned_in_set import DICOM_SOURCES, PHOTO_SOURCES
    from medcurate.privacy.dicom import _read

    source = DATA / "images" / "deid_data_dicom"
    sets = {
        "deid_data": [p for p in sorted(source.rglob("*.dcm"))],
        "pydicom": [Path(p) for name in DICOM_SOURCES + PHOTO_SOURCES if (p := get_testdata_file(name))],
    }
    for set_name, files in sets.items():
        datasets = [d for p in files if (d := _read(p)) is not None and "PixelData" in d]
        if not datasets:
            print(f"{set_name}: no files (missing {source})")
            continue
        for label in paths:
            started = time.perf_counter()
            counts = [len(PATHS[label][0](d, text, config)) for d in datasets]
            elapsed = time.perf_counter() - started
            print(
                f"{label:9s} {set_name} DICOMs: {len(datasets)} files, {sum(counts)} boxes, "
                f"{len(datasets) / elapsed:.3f} files/s"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=40, help="generated images per seed")
    parser.add_argument(
        "--seeds", default="23,29", help="generated sets to score (thresholds were set on seeds 5 and 11)"
    )
    parser.add_argument(
        "--paths", default="previous,ocr,detector", help="comma-separated: " + ",".join(PATHS)
    )
    parser.add_argument("--real", action="store_true", help="also time the paths on real DICOM files")
    parser.add_argument("--show-misses", action="store_true", help="name the cases with missed boxes")
    args = parser.parse_args(argv)

    from medcurate.privacy.burned_in_set import RECALL_INK, generate
    from medcurate.privacy.config import DeidConfig
    from medcurate.privacy.text import TextDeidentifier

    config = DeidConfig()
    text = TextDeidentifier(config)
    text.deidentify_batch(["warm-up 01/02/2003"])
    paths = [p for p in args.paths.split(",") if p]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    cases = [case for seed in seeds for case in generate(args.count, seed)]
    kinds = Counter(c.kind for c in cases)
    print(
        f"generated set: {len(cases)} images ({kinds['dicom']} DICOM, {kinds['photo']} photo), "
        f"{sum(len(c.boxes) for c in cases)} gold boxes, seeds {args.seeds} x {args.count}; "
        f"caught = >= {RECALL_INK:.0%} of ink painted"
    )
    for label in paths:
        dicom, photo = PATHS[label]
        totals, elapsed, missed = run_path(cases, text, config, dicom, photo)
        report(label, totals, elapsed, len(cases))
        if args.show_misses and missed:
            print("          missed in: " + " ".join(missed))
    if args.real:
        real_dicoms(text, config, paths)
    return 0


if __name__ == "__main__":
    sys.exit(main())
