"""Images (PNG, JPEG, WebP, TIFF, GIF, BMP) and DICOM into image samples with no metadata left.

Re-encoding policy: JPEG sources (JPEG files, and DICOMs stored as baseline/extended JPEG) are
re-encoded as JPEG (quality `jpeg_quality`, 95 by default: re-saving as PNG would only inflate a
lossy image); every other source, other DICOMs included, becomes a lossless PNG. Pixels are
copied into a fresh image before saving, so no EXIF, XMP, ICC, PNG text chunk or DICOM header
survives. Multi-frame inputs (animated GIF/WebP, multi-page TIFF, cine or multi-frame DICOM)
keep their middle frame, the one most likely to show the subject; the frame count is recorded
in the metadata.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pydicom
from PIL import Image, ImageOps, UnidentifiedImageError
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut, pixel_array
from pydicom.uid import (
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
)

from medcurate.pipelines.config import IngestConfig
from medcurate.pipelines.ingest.common import Item, Rejected, SkipFn, Source, make_sample
from medcurate.schemas.sample import Modality, SourceKind

# pydicom and Pillow log header values and input details: never let them reach a log line.
# (Pillow logs every EXIF/TIFF tag value, an ImageDescription naming the patient too, at DEBUG.)
logging.getLogger("pydicom").setLevel(logging.CRITICAL)
logging.getLogger("PIL").setLevel(logging.INFO)

# Modes written as they are; anything else is converted to the nearest of these first.
_PNG_MODES = frozenset({"1", "L", "LA", "RGB", "RGBA", "I;16"})
_JPEG_MODES = frozenset({"L", "RGB"})
# DICOMs stored as lossy JPEG are JPEG sources: re-encoded as JPEG, like JPEG files.
_LOSSY_JPEG = frozenset({JPEGBaseline8Bit, JPEGExtended12Bit})
# Images above this many pixels are box-reduced before hashing (the hash sees a 9x8 grid anyway).
_HASH_PIXELS = 1_000_000
_DICOM_METADATA = {
    "Modality": "modality",
    "BodyPartExamined": "body_part",
    "PhotometricInterpretation": "photometric_interpretation",
    "BitsStored": "bits_stored",
}


def perceptual_hash(image: Image.Image) -> int:
    """64-bit difference hash (dHash) of the grey image: near-duplicates differ in few bits."""
    factor = math.ceil(math.sqrt(image.width * image.height / _HASH_PIXELS))
    if factor > 1:
        image = image.reduce(factor)  # a box average first: a full-size float copy costs 4 bytes a pixel
    grey = np.asarray(
        image.convert("F") if image.mode in ("I", "I;16", "F") else image.convert("L"), np.float32
    )
    span = float(grey.max() - grey.min()) or 1.0
    small = Image.fromarray((grey - grey.min()) / span).resize((9, 8), Image.Resampling.BOX)
    cells = np.asarray(small)
    bits = (cells[:, 1:] > cells[:, :-1]).flatten()
    return int(np.packbits(bits).view(">u8")[0])


def _normalise_mode(image: Image.Image, target: str) -> Image.Image:
    allowed = _JPEG_MODES if target == "JPEG" else _PNG_MODES
    if image.mode in allowed:
        return image
    if image.mode == "P":
        return image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("I", "I;16B", "I;16L", "F"):
        return image.convert("I;16") if target == "PNG" else image.convert("L")
    has_alpha = image.mode in ("RGBA", "LA", "PA", "La", "RGBa")
    if target == "JPEG":
        return image.convert("L" if image.mode in ("1", "LA", "La") else "RGB")
    return image.convert("RGBA" if has_alpha else "RGB")


def encode_image(image: Image.Image, target: str, config: IngestConfig) -> dict[str, Any]:
    """The image fields of a sample: pixels re-encoded into a fresh file that carries no metadata."""
    image = _normalise_mode(image, target)
    clean = Image.new(image.mode, image.size)  # a fresh image: no info, EXIF or palette carried over
    clean.paste(image)
    del image
    buffer = io.BytesIO()
    if target == "JPEG":
        clean.save(buffer, "JPEG", quality=config.jpeg_quality, optimize=True)
    else:
        clean.save(buffer, "PNG", optimize=False, compress_level=6)
    return {
        "image_bytes": buffer.getvalue(),
        "image_format": target.lower(),
        "image_width": clean.width,
        "image_height": clean.height,
        "image_mode": clean.mode,
        "image_phash": perceptual_hash(clean),
        "mime_type": f"image/{target.lower()}",
    }


def _check_pixels(
    width: int, height: int, config: IngestConfig, corrupt: str = "corrupt_image", budget: bool = True
) -> None:
    """Reject before decoding: a bomb past Pillow's cap, anything past the decode budget (unless
    the caller can reduce it while decoding)."""
    if width <= 0 or height <= 0:
        raise Rejected(corrupt)
    if width * height > config.max_image_pixels:
        raise Rejected("decompression_bomb")
    if budget and width * height > config.image_pixel_budget:
        raise Rejected("image_over_pixel_budget")


def _draft_size(width: int, height: int, budget: int) -> tuple[int, int] | None:
    """The size to ask a JPEG decoder for so that the decoded image fits `budget` pixels (JPEG
    decodes at 1/2, 1/4 or 1/8 scale directly), or None when even 1/8 does not fit."""
    for scale in (1, 2, 4, 8):
        size = (math.ceil(width / scale), math.ceil(height / scale))
        if size[0] * size[1] <= budget:
            return size
    return None


def decode_image(data: bytes, config: IngestConfig) -> tuple[Image.Image, str, int, tuple[int, int] | None]:
    """Verified, oriented pixels of an image file, its format, frame count and, when it was reduced
    on decode to fit `image_pixel_budget`, its original size."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. "Corrupt EXIF data": noise, and it may quote the input
        # Pillow only warns between its cap and twice the cap: make the warning an error.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as probe:
                _check_pixels(*probe.size, config, budget=probe.format != "JPEG")
                probe.verify()
            image = Image.open(io.BytesIO(data))
            source_format = image.format or "unknown"
            original: tuple[int, int] | None = None
            if image.width * image.height > config.image_pixel_budget:
                size = _draft_size(image.width, image.height, config.image_pixel_budget)
                if size is None:
                    raise Rejected("image_over_pixel_budget")
                original = image.size
                image.draft(image.mode, size)
            frames = getattr(image, "n_frames", 1)
            if frames > 1:
                image.seek(frames // 2)
            image.load()
            ImageOps.exif_transpose(image, in_place=True)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise Rejected("decompression_bomb", error) from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, IndexError) as error:
            raise Rejected("corrupt_image", error) from None
    return image, source_format, frames, original


def read_image(source: Source, config: IngestConfig, on_skip: SkipFn) -> Iterator[Item]:
    data = source.read_all(config.max_file_bytes)
    image, source_format, frames, original = decode_image(data, config)
    del data
    target = "JPEG" if source_format == "JPEG" else "PNG"
    fields = encode_image(image, target, config)
    metadata = {
        "source_format": source_format.lower(),
        "width": str(fields["image_width"]),
        "height": str(fields["image_height"]),
        "mode": fields["image_mode"],
        "format": fields["image_format"],
    }
    if frames > 1:
        metadata.update(frames=str(frames), frame_index=str(frames // 2))
    if original is not None:
        metadata.update(downscaled="over_pixel_budget", original_size=f"{original[0]}x{original[1]}")
    yield make_sample(
        source.uri,
        None,
        source_kind=SourceKind.IMAGE.value,
        modality=Modality.IMAGE.value,
        metadata=metadata,
        **fields,
    )


def dicom_to_image(dataset: pydicom.Dataset, config: IngestConfig) -> tuple[Image.Image, int]:
    """The displayable middle frame: modality LUT, VOI LUT or window (else min-max), MONOCHROME1 inverted."""
    if not any(tag in dataset for tag in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise Rejected("no_pixel_data")
    rows, columns = int(dataset.get("Rows", 0) or 0), int(dataset.get("Columns", 0) or 0)
    _check_pixels(columns, rows, config, "corrupt_dicom")
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    if "TransferSyntaxUID" not in dataset.file_meta:
        # Rescue files whose meta header lost it: the encoding they were read with is the answer.
        implicit, little = dataset.original_encoding
        dataset.file_meta.TransferSyntaxUID = (
            ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian if little else ExplicitVRBigEndian
        )
    photometric = str(dataset.get("PhotometricInterpretation", "")).upper()
    try:
        array = pixel_array(dataset, index=frames // 2 if frames > 1 else None)
    except NotImplementedError as error:
        raise Rejected("unsupported_transfer_syntax", error) from None
    except (ValueError, RuntimeError, AttributeError, KeyError, TypeError, EOFError, OSError) as error:
        raise Rejected("corrupt_dicom", error) from None
    if photometric == "PALETTE COLOR":
        array = apply_color_lut(array, dataset)
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        return Image.fromarray(_to_uint8(np.ascontiguousarray(array[..., :3]))), frames
    if array.ndim != 2:
        raise Rejected("corrupt_dicom")
    values = apply_modality_lut(array, dataset)
    if "WindowCenter" in dataset or "VOILUTSequence" in dataset:
        values = apply_voi_lut(values, dataset)
    pixels = _to_uint8(np.asarray(values, dtype=np.float64))
    if photometric == "MONOCHROME1":
        pixels = 255 - pixels
    return Image.fromarray(pixels), frames


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """8-bit pixels: uint8 as it is, anything else (after windowing) scaled to its full range.

    Works in place on one float32 copy: a 16-bit radiograph must not cost eight bytes a pixel."""
    if values.dtype == np.uint8:
        return values
    pixels = np.nan_to_num(np.asarray(values, dtype=np.float32), copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(pixels.min()), float(pixels.max())
    pixels -= low
    pixels *= 255.0 / ((high - low) or 1.0)
    pixels += 0.5
    np.clip(pixels, 0, 255, out=pixels)
    return pixels.astype(np.uint8)


def study_key(dataset: pydicom.Dataset) -> str | None:
    """The study a DICOM object belongs to, as a hash: the Study Instance UID itself can be traced
    back to the patient (PS3.15 lists it among the attributes to replace)."""
    uid = str(dataset.get("StudyInstanceUID", "") or "").strip()
    return hashlib.sha256(uid.encode()).hexdigest()[:24] if uid else None


# SR content items whose value is text a report reader needs; names, dates, times and UIDs are not
# taken (PS3.15 identifying attributes), nor observation-context items (who observed whom).
_SR_VALUES = frozenset({"TEXT", "CODE", "NUM", "CONTAINER"})


def sr_text(dataset: pydicom.Dataset) -> str:
    """The readable report of a Structured Report: `Concept: value` lines in content-tree order."""
    lines: list[str] = []

    def visit(items: Any) -> None:
        for item in items:
            value_type = str(item.get("ValueType", ""))
            if item.get("RelationshipType") == "HAS OBS CONTEXT" or value_type not in _SR_VALUES:
                continue
            names = item.get("ConceptNameCodeSequence") or []
            name = str(names[0].get("CodeMeaning", "")).strip() if names else ""
            value = ""
            if value_type == "TEXT":
                value = str(item.get("TextValue", "")).strip()
            elif value_type == "CODE" and item.get("ConceptCodeSequence"):
                value = str(item.ConceptCodeSequence[0].get("CodeMeaning", "")).strip()
            elif value_type == "NUM" and item.get("MeasuredValueSequence"):
                measured = item.MeasuredValueSequence[0]
                units = measured.get("MeasurementUnitsCodeSequence") or []
                unit = str(units[0].get("CodeValue", "")) if units else ""
                value = f"{measured.get('NumericValue', '')} {unit}".strip()
            if value:
                lines.append(f"{name}: {value}" if name else value)
            elif value_type == "CONTAINER" and name:
                lines.append(name)
            if "ContentSequence" in item:
                visit(item.ContentSequence)

    visit(dataset.get("ContentSequence") or [])
    return "\n".join(lines)


def _study_metadata(dataset: pydicom.Dataset) -> dict[str, str]:
    key = study_key(dataset)
    if key is None:
        return {}
    numbers = {"series_number": "SeriesNumber", "instance_number": "InstanceNumber"}
    found = {name: str(dataset.get(keyword, "") or "").strip() for name, keyword in numbers.items()}
    return {"study_key": key, **{name: value for name, value in found.items() if value.isdigit()}}


def _sr_sample(source: Source, dataset: pydicom.Dataset) -> dict[str, Any]:
    text = sr_text(dataset)
    if not text.strip():
        raise Rejected("empty_report")
    metadata = {"modality": "SR", "source_format": "dicom_sr", **_study_metadata(dataset)}
    return make_sample(
        source.uri, None, source_kind=SourceKind.CLINICAL.value, modality=Modality.TEXT.value,
        mime_type="text/plain", text=text, metadata=metadata,
    )  # fmt: skip


def read_dicom(source: Source, config: IngestConfig, on_skip: SkipFn) -> Iterator[Item]:
    """An image object as an image sample; a Structured Report as the text of its report. Both
    name their study (`study_key`) so that a study's images and report become one sample."""
    data = source.read_all(config.max_file_bytes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's warnings quote header values
        try:
            dataset = pydicom.dcmread(io.BytesIO(data), force=data[128:132] != b"DICM")
            if str(dataset.get("Modality", "")).upper() == "SR" and "ContentSequence" in dataset:
                yield _sr_sample(source, dataset)
                return
            image, frames = dicom_to_image(dataset, config)
        except (
            InvalidDicomError,
            EOFError,
            ValueError,
            KeyError,
            TypeError,
            OSError,
            AttributeError,
        ) as error:
            raise Rejected("corrupt_dicom", error) from None
    transfer_syntax = getattr(dataset, "file_meta", {}).get("TransferSyntaxUID")
    fields = encode_image(image, "JPEG" if transfer_syntax in _LOSSY_JPEG else "PNG", config)
    metadata = {
        key: str(dataset.get(keyword, "")).strip()
        for keyword, key in _DICOM_METADATA.items()
        if keyword in dataset
    }
    if transfer_syntax is not None:
        metadata["transfer_syntax"] = transfer_syntax.name
    metadata.update(
        width=str(fields["image_width"]),
        height=str(fields["image_height"]),
        mode=fields["image_mode"],
        format=fields["image_format"],
        source_format="dicom",
        frames=str(frames),
        frame_index=str(frames // 2),
        **_study_metadata(dataset),
    )
    yield make_sample(
        source.uri,
        None,
        source_kind=SourceKind.IMAGE.value,
        modality=Modality.IMAGE.value,
        metadata={key: value for key, value in metadata.items() if value},
        **fields,
    )
