from typing import Literal

from pydantic import Field

from medcurate.schemas.config import StrictModel


class PublishConfig(StrictModel):
    output_dir: str = "out"
    num_shards: int = Field(
        0, ge=0, description="0 lets the runner choose; set it to size shards for readers"
    )
    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"
    row_group_bytes: int = Field(
        64 * 1024 * 1024, ge=1024, description="Parquet row-group buffer for streaming readers"
    )
    catalog_wait_s: float = Field(
        120,
        gt=0,
        description="how long a publish waits while another process (a query) holds the catalog file",
    )
