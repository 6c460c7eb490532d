"""Versioned publishing, the GE gate and the DuckDB catalog, on real Parquet files."""

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from medcurate.quality.expectations import validate_shards
from medcurate.schemas.manifest import Manifest, StageCounts, ValidationInfo
from medcurate.schemas.sample import new_sample, samples_to_table
from medcurate.warehouse.catalog import Catalog, CatalogError, catalog_path
from medcurate.warehouse.publish import latest_version, publish_version, read_manifest

CONFIG_HASH = "c" * 64


def stage_shards(folder: Path, batches: list[list[str]], config_hash: str = CONFIG_HASH) -> list[str]:
    folder.mkdir(parents=True)
    paths = []
    for index, texts in enumerate(batches):
        samples = [
            new_sample(
                source_kind="clinical",
                modality="text",
                source_uri=f"notes/{text}.txt",
                text=text,
                run_id="run",
                config_hash=config_hash,
            )
            for text in texts
        ]
        path = folder / f"part-{index}.parquet"
        pq.write_table(samples_to_table(samples), path)
        paths.append(str(path))
    return paths


def publish(out: Path, staging: Path, batches: list[list[str]], config_hash: str = CONFIG_HASH):
    shards = stage_shards(staging / "data", batches, config_hash)
    outcome = validate_shards(shards, CONFIG_HASH)
    (staging / "validation.json").write_text(json.dumps(outcome.results, default=str))

    def make_manifest(version, parent, shard_infos):
        rows = sum(s.rows for s in shard_infos)
        return Manifest(
            dataset="demo",
            version=version,
            parent=parent,
            run_id=staging.name,
            created_at=datetime.now(UTC).isoformat(),
            code_version="test",
            schema_version=1,
            config={},
            config_hash=CONFIG_HASH,
            shards=shard_infos,
            rows=rows,
            counts=StageCounts(read=rows, published=rows),
            validation=ValidationInfo(
                passed=outcome.passed,
                suite="s",
                results_path="validation/results.json",
                failed_expectations=outcome.failed,
            ),
        )

    return publish_version(
        shards, str(staging / "validation.json"), str(out / "demo"), catalog_path(str(out)), make_manifest
    )


def tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
        if p.is_file()
    }


def test_versions_are_immutable_chained_and_verifiable(tmp_path: Path):
    out = tmp_path / "out"
    v1_dir, v1 = publish(out, tmp_path / "run1", [["alpha", "beta"], ["gamma"]])
    assert v1.version == "v0001" and v1.parent is None and v1.rows == 3
    assert latest_version(str(out / "demo")) == "v0001"
    for shard in v1.shards:
        data = (Path(v1_dir) / shard.path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == shard.sha256 and len(data) == shard.bytes
    count = duckdb.sql(f"SELECT count(*) FROM read_parquet('{v1_dir}/data/*.parquet')").fetchall()[0][0]
    assert count == read_manifest(v1_dir).rows == 3
    before = tree_digest(Path(v1_dir))

    _, v2 = publish(out, tmp_path / "run2", [["delta"]])
    assert (v2.version, v2.parent) == ("v0002", "v0001")
    assert tree_digest(Path(v1_dir)) == before
    assert latest_version(str(out / "demo")) == "v0002"

    with Catalog(catalog_path(str(out)), read_only=True) as catalog:
        assert [row["version"] for row in catalog.versions()] == ["v0001", "v0002"]
        assert catalog.query("SELECT count(*) AS n FROM samples").fetchall()[0][0] == 1
        assert catalog.query("SELECT count(*) FROM samples", version="1").fetchall()[0][0] == 3


def test_a_version_that_fails_validation_never_becomes_latest(tmp_path: Path):
    out = tmp_path / "out"
    publish(out, tmp_path / "run1", [["alpha"]])
    # Same text in two shards -> duplicate ids across shards; wrong config hash in the rows.
    bad_dir, bad = publish(out, tmp_path / "run2", [["beta"], ["beta"]], config_hash="d" * 64)
    assert not bad.validation.passed
    assert any("config_hash" in f for f in bad.validation.failed_expectations)
    assert any("id_unique_across_shards" in f for f in bad.validation.failed_expectations)
    assert latest_version(str(out / "demo")) == "v0001"
    assert (Path(bad_dir) / "validation" / "results.json").exists()
    with Catalog(catalog_path(str(out)), read_only=True) as catalog:
        assert catalog.resolve(None, None) == ("demo", "v0001")


def test_catalog_errors_name_what_is_missing(tmp_path: Path):
    with pytest.raises(CatalogError, match="nothing has been published"):
        Catalog(str(tmp_path / "none.duckdb"), read_only=True)
    out = tmp_path / "out"
    publish(out, tmp_path / "run1", [["alpha"]])
    with (
        Catalog(catalog_path(str(out)), read_only=True) as catalog,
        pytest.raises(CatalogError, match="v0009"),
    ):
        catalog.resolve("demo", "v0009")
