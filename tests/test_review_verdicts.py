"""Verdict application without a server: redaction offsets, image boxes, undecided samples."""

from __future__ import annotations

import io

from PIL import Image

from medcurate.annotators.verdicts import Verdict, apply_verdict, redact_spans
from medcurate.schemas.sample import new_sample


def test_flagged_spans_are_redacted_and_existing_offsets_follow():
    text = "Mr Smith met <PERSON> at Mercy Hospital on Monday."
    existing = [{"start": 13, "end": 21, "type": "PERSON", "score": 0.9}]
    flagged = [
        {"start": 25, "end": 39, "type": "LOCATION"},
        {"start": 3, "end": 8, "type": "PERSON"},
        {"start": 14, "end": 18, "type": "PERSON"},  # inside an existing redaction: already covered
    ]
    redacted, redactions = redact_spans(text, existing, flagged)
    assert redacted == "Mr <PERSON> met <PERSON> at <LOCATION> on Monday."
    assert [redacted[r["start"] : r["end"]] for r in redactions] == ["<PERSON>", "<PERSON>", "<LOCATION>"]
    assert [r["score"] for r in redactions] == [None, 0.9, None]


def image_sample(mode: str, color: int | str, fmt: str) -> dict:
    buffer = io.BytesIO()
    Image.new(mode, (100, 50), color).save(buffer, format=fmt)
    return new_sample(
        source_kind="image",
        modality="image",
        source_uri=f"file:///x.{fmt.lower()}",
        image_bytes=buffer.getvalue(),
        image_format=fmt.lower(),
    )


def test_flagged_image_boxes_are_blacked_out():
    sample = image_sample("RGB", "white", "PNG")
    box = {"x": 10.0, "y": 20.0, "width": 30.0, "height": 40.0, "type": "PERSON"}
    applied = apply_verdict(sample, Verdict(sample["id"], "accepted", image_quality=4.0, phi_boxes=[box]))
    image = Image.open(io.BytesIO(applied["image_bytes"]))
    assert image.getpixel((20, 15)) == (0, 0, 0)
    assert image.getpixel((80, 40)) == (255, 255, 255)
    assert applied["review_image_quality"] == 4.0


def test_undecided_verdicts_leave_the_sample_unchanged():
    sample = new_sample(source_kind="web", modality="text", source_uri="u", text="t", review_status="pending")
    for decision in ("adjudicate", "incomplete"):
        assert apply_verdict(sample, Verdict(sample["id"], decision)) is sample
    assert apply_verdict(sample, None) is sample


def test_grayscale_jpeg_boxes_are_blacked_out_and_stay_jpeg():
    sample = image_sample("L", 200, "JPEG")
    box = {"x": 10.5, "y": 20.0, "width": 30.0, "height": 40.0, "type": "ID"}
    applied = apply_verdict(sample, Verdict(sample["id"], "accepted", phi_boxes=[box]))
    assert applied["image_format"] == "jpeg"
    image = Image.open(io.BytesIO(applied["image_bytes"]))
    assert image.format == "JPEG" and image.mode == "L"
    assert image.getpixel((25, 20)) < 10
    assert image.getpixel((80, 40)) > 190
