"""The manifest of a published dataset version: what it holds, how it was made, how to verify it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

MANIFEST_VERSION = 1


class ShardInfo(BaseModel):
    path: str = Field(description="relative to the version folder")
    rows: int
    bytes: int
    sha256: str
    # Recorded by publishes since the loader verifies while streaming; absent in older manifests,
    # whose shards the loader then hashes whole before first use.
    row_groups: list[int] | None = Field(None, description="rows in each row group")
    footer_sha256: str | None = Field(None, description="SHA-256 (128 bits) of the Parquet footer")
    chunk_sha256: list[list[str]] | None = Field(
        None, description="SHA-256 (128 bits) of each column chunk: [row group][leaf column]"
    )


class StageCounts(BaseModel):
    """read = published + dropped + dead_lettered, each broken down by `stage/reason`.

    Every input path the listing found counts at least once in `read`: as its records, as a dead
    letter, or as a drop of stage `ingest` saying why it was skipped (empty, hidden, special file...).
    """

    inputs: int | None = Field(
        None, description="input paths listed (files found, and those skipped with a reason)"
    )
    read: int
    published: int
    dropped: dict[str, int] = Field(default_factory=dict)
    dead_lettered: dict[str, int] = Field(default_factory=dict)

    @property
    def balanced(self) -> bool:
        return self.read == self.published + sum(self.dropped.values()) + sum(self.dead_lettered.values())


class ValidationInfo(BaseModel):
    passed: bool
    suite: str
    results_path: str
    failed_expectations: list[str] = Field(default_factory=list)


class Manifest(BaseModel):
    manifest_version: int = MANIFEST_VERSION
    dataset: str
    version: str
    parent: str | None
    run_id: str
    created_at: str
    code_version: str
    schema_version: int
    config: dict[str, Any]
    config_hash: str
    shards: list[ShardInfo]
    rows: int
    counts: StageCounts
    validation: ValidationInfo
    models: dict[str, Any] = Field(
        default_factory=dict,
        description="learned models the run applied (the PHI tagger): name, "
        "version and hashes, never their content",
    )
    site_dictionary: dict[str, Any] | None = Field(
        None,
        description="the site dictionary de-identification used (deid.site): name, version and hashes "
        "only, never its entries",
    )
    review: dict[str, int] = Field(
        default_factory=dict, description="routed to review by reason, verdicts applied, tasks pushed"
    )
