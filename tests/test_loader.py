from pathlib import Path

import pyarrow.parquet as pq
import pytest

from medcurate.schemas.manifest import Manifest, ShardInfo, StageCounts, ValidationInfo
from medcurate.schemas.sample import new_sample, samples_to_table
from medcurate.warehouse import storage
from medcurate.warehouse.loader import DatasetReader, ShardIntegrityError, resolve_version_dir
from medcurate.warehouse.publish import LATEST, MANIFEST, shard_info


def make_version(root: Path, shards: int = 3, rows_per_shard: int = 50) -> Path:
    version_dir = root / "demo" / "v0001"
    (version_dir / "data").mkdir(parents=True)
    infos: list[ShardInfo] = []
    for index in range(shards):
        samples = [
            new_sample(
                source_kind="web", modality="text", source_uri=f"s{index}-{n}", text=f"text {index} {n}"
            )
            for n in range(rows_per_shard)
        ]
        relative = f"data/part-{index:05d}.parquet"
        pq.write_table(samples_to_table(samples), version_dir / relative, row_group_size=16)
        infos.append(shard_info(str(version_dir / relative), relative))
    manifest = Manifest(
        dataset="demo",
        version="v0001",
        parent=None,
        run_id="r",
        created_at="now",
        code_version="t",
        schema_version=1,
        config={},
        config_hash="h",
        shards=infos,
        rows=shards * rows_per_shard,
        counts=StageCounts(read=shards * rows_per_shard, published=shards * rows_per_shard),
        validation=ValidationInfo(passed=True, suite="s", results_path="validation/results.json"),
    )
    storage.write_text(str(version_dir / MANIFEST), manifest.model_dump_json())
    storage.write_text(str(root / "demo" / LATEST), "v0001\n")
    return version_dir


def test_ranks_partition_every_row_exactly_once(tmp_path: Path):
    make_version(tmp_path)
    version_dir = resolve_version_dir(str(tmp_path), "demo")
    seen: list[str] = []
    for rank in range(2):
        reader = DatasetReader(version_dir, columns=["id", "text"], batch_size=10, rank=rank, world_size=2)
        batches = list(reader)
        assert all(batch.num_rows <= 10 for batch in batches)
        assert batches[0].schema.names == ["id", "text"]
        ids = [i for batch in batches for i in batch.column("id").to_pylist()]
        assert len(ids) == reader.num_rows
        seen += ids
    assert len(seen) == len(set(seen)) == 150


def test_a_tampered_shard_is_refused(tmp_path: Path):
    version_dir = make_version(tmp_path, shards=1)
    shard = version_dir / "data" / "part-00000.parquet"
    shard.write_bytes(shard.read_bytes()[:-1] + b"\0")
    with pytest.raises(ShardIntegrityError, match="does not match"):
        list(DatasetReader(str(version_dir)))


def test_no_latest_is_a_clear_error(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="no validated"):
        resolve_version_dir(str(tmp_path), "missing")
