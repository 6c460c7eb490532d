from typing import Literal

from pydantic import Field, model_validator

from medcurate.schemas.config import StrictModel


class PublishConfig(StrictModel):
    output_dir: str = Field("out", description="local folder or any Beam filesystem (gs://, s3://)")
    catalog: str | None = Field(
        None,
        description="local DuckDB catalog file; default OUTPUT_DIR/catalog.duckdb, required when "
        "output_dir is remote (gs://, s3://)",
    )
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

    @model_validator(mode="after")
    def _catalog_is_local(self) -> "PublishConfig":
        """A remote output without a local catalog fails here, before any work, with what to set."""
        from medcurate.warehouse.catalog import CatalogLocationError, catalog_path

        try:
            catalog_path(self.output_dir, self.catalog)
        except CatalogLocationError as error:
            raise ValueError(str(error)) from None
        return self
