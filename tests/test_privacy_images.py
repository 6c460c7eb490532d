"""Image scrubbing: metadata gone, burned-in PHI boxed, unchecked images routed to review."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageDraw, ImageFont

from medcurate.privacy.config import DeidConfig
from medcurate.privacy.images import ocr_words, scrub_image_sample
from medcurate.privacy.text import TextDeidentifier
from medcurate.schemas.sample import new_sample


def _jpeg_with_gps() -> bytes:
    image = Image.new("RGB", (120, 80), (30, 120, 200))
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker"
    exif[0x013B] = "Artist Ramona Quist"
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (42.0, 21.0, 30.0)
    gps[3] = "W"
    gps[4] = (71.0, 3.0, 0.0)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif, icc_profile=b"fake-icc Ramona Quist")
    return buffer.getvalue()


def test_exif_gps_and_icc_are_gone() -> None:
    data = _jpeg_with_gps()
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(0x8825)
    sample = new_sample(
        source_kind="image", modality="image", source_uri="mem://x", image_bytes=data, image_format="jpeg"
    )
    out = scrub_image_sample(sample, config=DeidConfig(ocr=False))
    clean = Image.open(io.BytesIO(out["image_bytes"]))
    assert not clean.getexif()
    assert "icc_profile" not in clean.info and "exif" not in clean.info
    assert b"Ramona" not in out["image_bytes"] and b"GPS" not in out["image_bytes"]
    assert out["image_format"] == "jpeg" and (out["image_width"], out["image_height"]) == (120, 80)
    # OCR switched off: the text was not checked, so the image goes to review.
    assert out["review_status"] == "pending"
    assert "deid:burned_in_text_unchecked" in out["review_reasons"]


def test_png_text_chunks_are_gone() -> None:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Comment", "patient Ramona Quist")
    buffer = io.BytesIO()
    Image.new("L", (40, 40), 128).save(buffer, format="PNG", pnginfo=info)
    sample = new_sample(
        source_kind="image", modality="image", source_uri="mem://p", image_bytes=buffer.getvalue()
    )
    out = scrub_image_sample(sample, config=DeidConfig(ocr=False))
    assert b"Ramona" not in out["image_bytes"]
    assert not Image.open(io.BytesIO(out["image_bytes"])).text


@pytest.mark.slow
def test_burned_in_name_is_boxed_out() -> None:
    image = Image.new("L", (640, 230), 0)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=28)
    draw.text((20, 20), "Patient: Dr. Harold Whitcombe", fill=255, font=font)
    draw.text((20, 90), "DOB 03/14/1950", fill=255, font=font)
    draw.text((20, 160), "Portable chest view", fill=255, font=font)
    assert any("Whitcombe" in w.text for w in ocr_words(image))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    sample = new_sample(
        source_kind="image", modality="image", source_uri="mem://us", image_bytes=buffer.getvalue()
    )
    out = scrub_image_sample(sample, TextDeidentifier(DeidConfig()), DeidConfig())
    assert out["review_status"] == "not_required"
    assert out["metadata"]["deid.ocr"] == "checked"
    words = " ".join(w.text for w in ocr_words(Image.open(io.BytesIO(out["image_bytes"]))))
    assert "Whitcombe" not in words and "03/14/1950" not in words
    assert "Patient" not in words  # a line that holds PHI goes whole
    assert "Portable" in words  # a line without PHI stays
