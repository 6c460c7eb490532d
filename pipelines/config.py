from typing import Literal

from pydantic import Field

from medcurate.schemas.config import StrictModel


class MultimodalConfig(StrictModel):
    """Filters on the parts of interleaved documents (web pages, articles, studies), as OBELICS does:
    each part left out is counted under its reason in the document's `parts_dropped` metadata."""

    min_image_side: int = Field(
        150, ge=1, description="images with a shorter side are dropped (icons, spacers)"
    )
    max_image_side: int = Field(20_000, ge=1, description="images with a longer side are dropped")
    max_aspect_ratio: float = Field(3.0, ge=1.0, description="longer side over shorter side (banners, rules)")
    max_images_per_document: int = Field(30, ge=1, description="images past this many are dropped")
    min_block_words: int = Field(
        3, ge=0, description="text blocks of fewer words are dropped (menus, labels)"
    )
    max_image_bytes: int = Field(16 * 1024 * 1024, gt=0, description="larger image files are not attached")
    no_images_left: Literal["text", "drop"] = Field(
        "text",
        description="a web page whose images were all filtered out: kept as a text sample, or dropped "
        "with the reason `no_images_left`",
    )


class IngestConfig(StrictModel):
    inputs: list[str] = Field(
        default_factory=list, description="files, folders or globs; any Beam filesystem"
    )
    max_file_bytes: int = Field(
        256 * 1024 * 1024,
        gt=0,
        description="larger inputs read whole (not WARC, JSONL, CSV) are dead-lettered",
    )
    part_bytes: int = Field(
        1024 * 1024,
        gt=0,
        description="line-delimited inputs (JSONL, CSV) larger than this are read by several workers at "
        "once, up to 16, each taking its share of the records",
    )
    max_record_bytes: int = Field(
        16 * 1024 * 1024,
        gt=0,
        description="larger WARC records, JSONL/CSV lines and HTML pages are dead-lettered",
    )
    max_text_chars: int = Field(2_000_000, gt=0, description="longer texts are dead-lettered")
    max_image_pixels: int = Field(
        89_478_485,
        gt=0,
        description="decompression-bomb guard (width x height): larger images are dead-lettered unread",
    )
    image_pixel_budget: int = Field(
        25_000_000,
        gt=0,
        description="most pixels one image is decoded to (bounds memory per image): a larger JPEG is "
        "reduced while it is decoded (1/2, 1/4 or 1/8) and recorded as downscaled; any other larger "
        "image is dead-lettered as `image_over_pixel_budget`",
    )
    max_json_depth: int = Field(
        100, gt=0, le=500, description="deeper-nested JSON documents or records are dead-lettered"
    )
    jpeg_quality: int = Field(95, ge=50, le=100, description="re-encoding quality for JPEG sources")
    html_favor: Literal["balanced", "precision", "recall"] = Field(
        "precision",
        description="trafilatura's trade-off between boilerplate kept and article text lost; precision "
        "scored best on the article benchmark (benchmarks/ingest_eval.py)",
    )
    text_fields: list[str] = Field(
        default_factory=lambda: ["text", "note", "note_text", "body", "content", "TEXT"],
        description="JSONL keys / CSV columns holding the note text; the first present is used",
    )
    metadata_fields: list[str] = Field(
        default_factory=lambda: ["note_type", "category", "specialty", "language"],
        description="JSONL keys / CSV columns kept as metadata; anything else may identify a patient",
    )
    multimodal: MultimodalConfig = Field(default_factory=MultimodalConfig)
