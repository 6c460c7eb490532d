"""The run configuration: one validated model, loaded from YAML, overridden from the command line.

Each stage owns its section (defined beside its code); this module only composes them, loads,
applies `section.key=value` overrides and hashes the resolved result for the manifest.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from medcurate.annotators.config import ReviewConfig
from medcurate.dedup.config import DedupConfig
from medcurate.pipelines.config import IngestConfig
from medcurate.privacy.config import DeidConfig
from medcurate.quality.config import QualityConfig
from medcurate.schemas.config import StrictModel
from medcurate.warehouse.config import PublishConfig


class RunnerConfig(StrictModel):
    """Beam runner. Local runs use the in-process FnApiRunner: Beam's DirectRunner first tries the
    Prism runner, which downloads a binary at run time (and can hang on a network that drops it)."""

    name: Literal["FnApiRunner", "DataflowRunner", "DaskRunner"] = "FnApiRunner"
    direct_num_workers: int = Field(
        0, ge=0, description="local worker processes (FnApiRunner); 0: one per CPU core"
    )
    direct_running_mode: Literal["in_memory", "multi_threading", "multi_processing"] = Field(
        "multi_processing",
        description="multi_processing runs the workers as processes, each loading the models once; "
        "in_memory runs everything in one process (one core)",
    )
    worker_start: Literal["fork", "spawn"] = Field(
        "fork",
        description="multi_processing workers: fork (from one process that imported the code once, "
        "so they share its memory) or spawn (Beam's own: a fresh interpreter each)",
    )
    options: list[str] = Field(default_factory=list, description="extra Beam pipeline options, passed as-is")


class RunConfig(StrictModel):
    dataset: str = Field("medcurate-sample", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    deid: DeidConfig = Field(default_factory=DeidConfig)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    review: ReviewConfig = Field(default_factory=ReviewConfig)
    publish: PublishConfig = Field(default_factory=PublishConfig)
    runner: RunnerConfig = Field(default_factory=RunnerConfig)

    @model_validator(mode="after")
    def _review_files_beside_the_datasets(self) -> RunConfig:
        """Reviews and the push outbox belong with the datasets they judge, unless placed explicitly.

        Both are local files (appended to, rewritten in place): for a remote output (gs://, s3://)
        they go beside its local catalog instead."""
        output_dir = self.publish.output_dir.rstrip("/")
        if "://" in output_dir and not output_dir.startswith("file://") and self.publish.catalog:
            output_dir = str(Path(self.publish.catalog).parent)
        if self.review.reviews_dir is None:
            self.review.reviews_dir = f"{output_dir}/reviews"
        if self.review.outbox is None:
            self.review.outbox = f"{output_dir}/review_outbox.jsonl"
        return self


class ConfigError(ValueError):
    """A run configuration that cannot be used; the message says which key and why."""


def _set_dotted(tree: dict[str, Any], dotted_key: str, value: Any) -> None:
    *parents, leaf = dotted_key.split(".")
    node = tree
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"cannot set {dotted_key!r}: {part!r} is not a section")
        node = child
    node[leaf] = value


def parse_override(text: str) -> tuple[str, Any]:
    """`dedup.threshold=0.7` -> ("dedup.threshold", 0.7); the value is read as YAML."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r} is not of the form section.key=value")
    return key.strip(), yaml.safe_load(raw)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as error:
            raise ConfigError(f"cannot read config {path}: {error}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"config {path} must be a mapping at the top level")
    for override in overrides or []:
        _set_dotted(raw, *parse_override(override))
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as error:
        details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise ConfigError(f"invalid run config: {details}") from None


def resolved_config(config: RunConfig) -> dict[str, Any]:
    return config.model_dump(mode="json")


def config_hash(config: RunConfig) -> str:
    canonical = json.dumps(resolved_config(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
