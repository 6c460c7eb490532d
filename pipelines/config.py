from pydantic import Field

from medcurate.schemas.config import StrictModel


class IngestConfig(StrictModel):
    inputs: list[str] = Field(
        default_factory=list, description="files, folders or globs; any Beam filesystem"
    )
    max_file_bytes: int = Field(256 * 1024 * 1024, gt=0, description="larger inputs are dead-lettered")
    max_text_chars: int = Field(2_000_000, gt=0, description="longer texts are dead-lettered")
    max_image_pixels: int = Field(89_478_485, gt=0, description="decompression-bomb guard")
