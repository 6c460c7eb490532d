from pydantic import Field

from medcurate.schemas.config import StrictModel


class PublishConfig(StrictModel):
    output_dir: str = "out"
    max_rows_per_shard: int = Field(200_000, ge=1)
    row_group_bytes: int = Field(64 * 1024 * 1024, ge=1024, description="Parquet row-group buffer for streaming readers")
