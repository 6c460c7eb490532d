"""Burned-in text: the generated gold set, box recall and collateral, and DICOM text that is not PHI."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pydicom
import pytest
from PIL import Image, ImageDraw, ImageFont
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from medcurate.privacy.burned_in_set import BurnedInCase, generate, score_boxes
from medcurate.privacy.config import DeidConfig
from medcurate.privacy.dicom import DicomDeidentifier, _frames, _render, burned_in_boxes
from medcurate.privacy.images import (
    OcrWord,
    find_text,
    glyph_lines,
    ocr_words,
    phi_boxes,
    phi_line,
    photo_redaction_boxes,
    text_boxes,
)
from medcurate.privacy.text import TextDeidentifier
from medcurate.privacy.text_detect import detect_scale, detect_text, model_path

# On this seed's six images (34 gold boxes) the detector path catches 32, painting 2.2% of the
# image outside the gold boxes; the single Tesseract pass catches 7. The bounds leave room for
# Tesseract's run-to-run stability on the photos, not for a regression.
SMALL_SET = {"count": 6, "seed": 5}


def test_generated_set_is_seeded_and_gold_boxes_hold_their_ink() -> None:
    first, second = list(generate(**SMALL_SET)), list(generate(**SMALL_SET))
    assert [c.boxes for c in first] == [c.boxes for c in second]
    assert all(np.array_equal(a.pixels, b.pixels) for a, b in zip(first, second, strict=True))
    assert {c.kind for c in first} == {"dicom", "photo"}
    for case in first:
        rows, cols = case.pixels.shape[:2]
        assert case.boxes and case.ink is not None
        for index, box in enumerate(case.boxes):
            ink = np.argwhere(case.ink == index + 1)
            assert len(ink) > 0 and 0 <= box.left < box.right <= cols and 0 <= box.top < box.bottom <= rows
            assert ink[:, 0].min() >= box.top and ink[:, 0].max() < box.bottom
            assert ink[:, 1].min() >= box.left and ink[:, 1].max() < box.right
        # boxes never overlap: each gold pixel belongs to one rendered field
        covered = np.zeros((rows, cols), dtype=np.int32)
        for box in case.boxes:
            covered[box.top : box.bottom, box.left : box.right] += 1
        assert covered.max() == 1


def test_scoring_counts_ink_and_collateral() -> None:
    case = next(c for c in generate(**SMALL_SET) if c.kind == "dicom")
    exact = []
    for index in range(len(case.boxes)):
        rows, cols = np.nonzero(case.ink == index + 1)
        exact.append((int(cols.min()), int(rows.min()), int(cols.max()), int(rows.max())))  # inclusive
    scored = score_boxes(case, exact, margin=1)  # within the gold halo of two pixels
    assert scored["caught"] == scored["gold"] == len(case.boxes) and scored["outside"] == 0
    half = [(b.left, b.top, (b.left + b.right) // 2, b.bottom) for b in case.boxes]
    assert score_boxes(case, half, margin=0)["caught"] == 0
    corner = score_boxes(case, [(0, 0, 9, 9)], margin=0)  # corners inclusive, as paint_boxes draws
    assert corner["painted"] == 100 and corner["pixels"] == case.pixels.shape[0] * case.pixels.shape[1]


def _text_dicom(text: str) -> tuple[Dataset, np.ndarray]:
    """A secondary-capture DICOM with `text` burned into a dark banner, and the text's ink mask."""
    image = Image.new("L", (320, 240), 30)
    ImageDraw.Draw(image).ellipse((60, 60, 260, 230), fill=140)
    font = ImageFont.truetype("DejaVuSans.ttf", 12)
    ImageDraw.Draw(image).text((6, 4), text, fill=250, font=font)
    pixels = np.array(image)
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))  # a real header, new 8-bit pixels
    ds.set_pixel_data(pixels, "MONOCHROME2", 8, generate_instance_uid=False)
    return ds, pixels > 200


@pytest.mark.slow
def test_dicom_paints_burned_in_text_that_is_not_phi() -> None:
    """Banner words that read as harmless ("PORTABLE SUPINE") are painted all the same."""
    config = DeidConfig()
    text = TextDeidentifier(config)
    dataset, ink = _text_dicom("PORTABLE SUPINE 120 KV")
    banner = np.zeros_like(ink)
    banner[:24] = True
    words = find_text(_render(_frames(dataset)[0]))
    assert text_boxes(words) and not phi_boxes(words, text, 0.0)  # no word is classified as PHI
    result = DicomDeidentifier(config, text).deidentify(dataset)
    assert result.ocr == "checked" and result.boxes
    before, after = dataset.pixel_array, result.dataset.pixel_array
    assert (after[ink & banner] == 30).mean() >= 0.99  # the text's ink is filled with the darkest value
    assert (after[~banner] == before[~banner]).mean() > 0.95


def test_glyph_lines_find_a_printed_line_and_not_a_smooth_blob() -> None:
    image = Image.new("L", (300, 120), 20)
    ImageDraw.Draw(image).ellipse((150, 40, 290, 115), fill=120)
    ImageDraw.Draw(image).text(
        (8, 8), "Quillon 4471", fill=230, font=ImageFont.truetype("DejaVuSans.ttf", 14)
    )
    lines = glyph_lines(np.array(image))
    assert any(
        left <= 10 and right >= 90 and top <= 12 and bottom <= 30 for left, top, right, bottom in lines
    )
    assert not any(top >= 40 and bottom - top > 30 for _, top, _, bottom in lines)


def test_detector_model_ships_with_the_install_and_scales_are_bounded() -> None:
    assert model_path().is_file() and model_path().stat().st_size > 1_000_000
    assert detect_scale((64, 64)) == 8.0  # thumbnails: banner glyphs need upscaling most
    assert detect_scale((512, 512)) == 2.0
    assert detect_scale((3000, 2000)) == pytest.approx(4096 / 3000)  # the longer side is capped


def test_detector_finds_faint_text_lines_and_not_a_smooth_scene() -> None:
    """Light-on-dark and low-contrast dark-on-light lines are found, each box holding its line's
    ink; soft shapes with a gradient hold no text and get no box."""
    image = Image.new("L", (400, 200), 25)
    draw = ImageDraw.Draw(image)
    draw.ellipse((220, 60, 390, 190), fill=150)
    draw.text((10, 10), "Quillon^Marvesta", fill=235, font=ImageFont.truetype("DejaVuSans.ttf", 11))
    draw.rectangle((0, 150, 200, 200), fill=120)
    draw.text((10, 165), "MRN 40917723", fill=80, font=ImageFont.truetype("DejaVuSansMono.ttf", 12))
    boxes = detect_text(image)
    ink = np.array(image)
    for top, bottom, left, right, is_ink in ((8, 26, 8, 130, ink > 200), (160, 185, 8, 110, ink < 100)):
        rows, cols = np.nonzero(is_ink[top:bottom, left:right])
        assert any(
            b[0] <= left + cols.min() and b[2] >= left + cols.max() and b[1] <= top + rows.min()
            for b in boxes
        ), boxes
    scene = Image.new("L", (400, 300), 40)
    ImageDraw.Draw(scene).ellipse((60, 40, 340, 280), fill=170)
    ImageDraw.Draw(scene).ellipse((150, 120, 240, 200), fill=90)
    assert detect_text(scene) == []


@pytest.mark.slow
def test_small_generated_set_recall_and_collateral() -> None:
    """Detector path against the single Tesseract pass on the same small generated set."""
    config = DeidConfig()
    text = TextDeidentifier(config)
    cases: list[BurnedInCase] = list(generate(**SMALL_SET))
    totals: Counter[str] = Counter()
    previous: Counter[str] = Counter()
    for case in cases:
        if case.kind == "dicom":
            image = _render(_frames(case.dataset)[0])
            boxes = burned_in_boxes(image)
        else:
            image = case.image()
            boxes = photo_redaction_boxes(image, text, config.ocr_min_confidence)
        totals.update(score_boxes(case, boxes))
        previous.update(score_boxes(case, phi_boxes(ocr_words(image), text, config.ocr_min_confidence)))
    figures = (totals["caught"], totals["gold"], totals["outside"] / totals["pixels"], previous["caught"])
    assert totals["gold"] >= 30
    assert totals["caught"] / totals["gold"] >= 0.9, figures
    assert totals["outside"] / totals["pixels"] <= 0.05, figures
    assert totals["caught"] >= previous["caught"] + 0.6 * totals["gold"], figures


def _reading(*words: tuple[str, float]) -> list[OcrWord]:
    return [OcrWord(text, 10 * index, 0, 8, 10, confidence) for index, (text, confidence) in enumerate(words)]


def test_photo_lines_of_a_patient_banner_are_painted_and_chart_labels_stay() -> None:
    """A photo line is painted when it reads as a banner field (a sex marker alone or after its
    label), as a FAMILY^GIVEN name however OCR renders the caret, or as too little to judge."""
    least = DeidConfig().ocr_min_confidence
    for words in (
        _reading(("Sex:", 92), ("F", 92)),
        _reading(("M", 70)),
        _reading(("QUARLEVINK*~TOSMERA", 60)),
        _reading(("ea", 40)),
    ):
        assert phi_line(words, 0, least), words
    assert not phi_line(_reading(("Heart", 90), ("rate", 91), ("trend", 88)), 0, least)
    assert not phi_line(_reading(("Contrast", 90), ("phase", 90)), 0, least)
