"""Outputs on an object store (gs://): paths are joined by the store's own rules, the catalog is an
explicit local file, and `dedup.against_published` reads published shards from the store.

No bucket is reachable here, so the end-to-end test swaps the network client under Beam's real
GCSFileSystem for an in-memory object store: every gs:// path still goes through Beam's own
gs:// join, split, match, rename and delete logic.
"""

import io
import time
from pathlib import Path

import pytest
from apache_beam.io.gcp import gcsfilesystem

from medcurate.cli import main
from medcurate.config import ConfigError, load_config
from medcurate.warehouse import locks, storage
from medcurate.warehouse.catalog import Catalog, CatalogLocationError, catalog_path
from medcurate.warehouse.publish import read_manifest

REPO = Path(__file__).resolve().parents[1]
BUCKET = "gs://medcurate-test-bucket/curated"


def test_gs_paths_join_as_gs_paths():
    assert storage.join(BUCKET, "notes", "v0001") == f"{BUCKET}/notes/v0001"
    assert storage.is_remote(BUCKET) and not storage.is_remote("out/notes")
    assert (
        locks.local_dir(f"{BUCKET}/notes") == locks.lock_root() / "gs" / "medcurate-test-bucket/curated/notes"
    )
    assert locks.dataset_lock_path("out/notes") == Path("out/notes/.lock")


def test_a_remote_output_needs_a_local_catalog(tmp_path: Path):
    assert catalog_path("out") == str(Path("out") / "catalog.duckdb")
    with pytest.raises(CatalogLocationError, match=r"publish\.catalog"):
        catalog_path(BUCKET)
    with pytest.raises(CatalogLocationError, match="must be a local file"):
        catalog_path(BUCKET, f"{BUCKET}/catalog.duckdb")
    assert catalog_path(BUCKET, str(tmp_path / "catalog.duckdb")) == str(tmp_path / "catalog.duckdb")
    with pytest.raises(ConfigError, match=r"publish\.catalog"):
        load_config(None, [f"publish.output_dir={BUCKET}"])
    config = load_config(None, [f"publish.output_dir={BUCKET}", f"publish.catalog={tmp_path}/c.duckdb"])
    assert config.review.reviews_dir == f"{tmp_path}/reviews", "review files are local, beside the catalog"
    assert config.review.outbox == f"{tmp_path}/review_outbox.jsonl"


class MemoryGcs:
    """The calls Beam's GCSFileSystem makes on its GCS client, over a dict of objects."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, float]] = {}

    def open(self, path: str, mode: str = "rb", mime_type: str = "", **_: object):
        if mode.startswith("r"):
            if path not in self.objects:
                raise FileNotFoundError(path)
            return io.BytesIO(self.objects[path][0])
        store = self.objects

        class Upload(io.BytesIO):
            def close(self) -> None:
                if not self.closed:
                    store[path] = (self.getvalue(), time.time())
                super().close()

        return Upload()

    def list_files(self, prefix: str, with_metadata: bool = False):
        for path, (data, updated) in sorted(self.objects.items()):
            if path.startswith(prefix):
                yield (path, (len(data), updated)) if with_metadata else (path, len(data))

    def copy_batch(self, pairs):
        for source, destination in pairs:
            self.objects[destination] = self.objects[source]
        return [(source, destination, None) for source, destination in pairs]

    def delete_batch(self, paths):
        for path in paths:
            self.objects.pop(path, None)
        return [(path, None) for path in paths]

    def delete(self, path: str, recursive: bool = False) -> None:
        for name in [p for p in self.objects if p == path or (recursive and p.startswith(path))]:
            del self.objects[name]

    def exists(self, path: str) -> bool:
        return path in self.objects

    def size(self, path: str) -> int:
        return len(self.objects[path][0])

    def last_updated(self, path: str) -> float:
        return self.objects[path][1]

    def _status(self, path: str) -> dict:
        return {"size": self.size(path), "updated": self.last_updated(path)}


@pytest.mark.slow
def test_publish_and_against_published_on_gs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    gcs = MemoryGcs()
    monkeypatch.setattr(gcsfilesystem.GCSFileSystem, "_gcsIO", lambda self: gcs)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    catalog = tmp_path / "catalog" / "catalog.duckdb"
    notes = ["--input", str(REPO / "sample_data" / "clinical" / "notes")]
    # In process: the in-memory store exists in this process only, not in worker processes.
    in_process = ["--set", "runner.direct_running_mode=in_memory", "--set", "runner.direct_num_workers=1"]
    common = [*notes, "--output", BUCKET, "--set", f"publish.catalog={catalog}", *in_process]

    assert main(["run", *common, "--dataset", "notes"]) == 0
    assert main(["run", *common, "--dataset", "more", "--set", "dedup.against_published=[notes]"]) == 0

    assert not list(cwd.iterdir()), "nothing may land in a local folder named after the bucket"
    first = read_manifest(f"{BUCKET}/notes/v0001")
    second = read_manifest(f"{BUCKET}/more/v0001")
    assert first.rows > 0
    assert second.rows == 0, "every note was already published in `notes`"
    assert second.counts.dropped["dedup/exact_duplicate"] >= first.rows
    assert any(path.startswith(f"{BUCKET}/notes/v0001/data/") for path in gcs.objects)
    assert not any("/.staging/" in path for path in gcs.objects), "staging is cleaned up on the store"
    with Catalog(str(catalog), read_only=True) as opened:
        shards = opened.shard_paths("notes", "v0001")
        assert shards and all(path.startswith(f"{BUCKET}/notes/v0001/data/") for path in shards)
        assert len(opened.exact_hashes("notes")) == first.rows
    assert (tmp_path / "cache" / "medcurate" / "locks" / "gs" / "medcurate-test-bucket").is_dir()
