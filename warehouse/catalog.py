"""The DuckDB catalog: which dataset versions and shards exist, and SQL over them.

DuckDB lets one process write a database file, or many read it, never both. So every connection
is brief (open, read or write, close), and opening waits with backoff while another process holds
the file: a `medcurate query` running during a publish delays the publish a little, never fails it.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow.parquet as pq

from medcurate.schemas.manifest import Manifest
from medcurate.warehouse import storage

log = logging.getLogger(__name__)

CATALOG_FILE = "catalog.duckdb"
DEFAULT_WAIT_S = 120.0

_TABLES = """
CREATE TABLE IF NOT EXISTS versions (
    dataset VARCHAR, version VARCHAR, parent VARCHAR, run_id VARCHAR, created_at VARCHAR,
    rows BIGINT, config_hash VARCHAR, validation_passed BOOLEAN, path VARCHAR,
    PRIMARY KEY (dataset, version));
CREATE TABLE IF NOT EXISTS shards (
    dataset VARCHAR, version VARCHAR, path VARCHAR, rows BIGINT, bytes BIGINT, sha256 VARCHAR,
    PRIMARY KEY (dataset, version, path));
"""


def read_parquet_sql(paths: list[str]) -> str:
    """A DuckDB table expression over these Parquet files, quoted safely."""
    listing = ", ".join("'" + path.replace("'", "''") + "'" for path in paths)
    return f"read_parquet([{listing}])"


class CatalogError(LookupError):
    """No such catalog, dataset or version; the message says which."""


class CatalogBusyError(TimeoutError):
    """Another process kept the catalog file locked longer than we were willing to wait."""


def _held_by_another_process(error: duckdb.Error) -> bool:
    return "lock" in str(error).lower()


def connect(path: str, read_only: bool, wait_s: float = DEFAULT_WAIT_S) -> duckdb.DuckDBPyConnection:
    """A connection to the catalog file, retried with backoff while another process holds its lock."""
    deadline = time.monotonic() + wait_s
    delay = 0.05
    while True:
        try:
            return duckdb.connect(path, read_only=read_only)
        except duckdb.IOException as error:
            if not _held_by_another_process(error):
                raise
            if time.monotonic() + delay > deadline:
                raise CatalogBusyError(
                    f"the catalog {path} stayed locked by another process for {wait_s:.0f} s: "
                    + str(error).splitlines()[0]
                ) from error
            log.info("catalog %s is in use by another process: retrying in %.2f s", path, delay)
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


class CatalogLocationError(CatalogError):
    """The catalog would not be a local file (DuckDB writes local files only)."""


def catalog_path(output_dir: str, catalog: str | None = None) -> str:
    """The local DuckDB file cataloguing `output_dir`: `catalog` when given, else beside the output.

    A remote output (`gs://`, `s3://`) has no default: its catalog must be named explicitly.
    """
    if catalog:
        if storage.is_remote(catalog):
            raise CatalogLocationError(
                f"the catalog {catalog} must be a local file (DuckDB writes local files only)"
            )
        return catalog
    if storage.is_remote(output_dir):
        raise CatalogLocationError(
            f"the output {output_dir} is remote and the DuckDB catalog must be a local file: "
            "name one with publish.catalog (or --catalog), e.g. /data/medcurate/catalog.duckdb"
        )
    return str(Path(output_dir) / CATALOG_FILE)


class Catalog:
    """One brief connection to the catalog: use it in a `with` block and close it soon."""

    def __init__(self, path: str, read_only: bool = False, wait_s: float = DEFAULT_WAIT_S) -> None:
        if read_only and not Path(path).exists():
            raise CatalogError(f"no catalog at {path}: nothing has been published there yet")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.connection = connect(path, read_only, wait_s)
        if not read_only:
            self.connection.execute(_TABLES)

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.connection.close()

    def register(self, manifest: Manifest, version_dir: str) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute(
                "INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    manifest.dataset,
                    manifest.version,
                    manifest.parent,
                    manifest.run_id,
                    manifest.created_at,
                    manifest.rows,
                    manifest.config_hash,
                    manifest.validation.passed,
                    version_dir,
                ],
            )
            cursor.executemany(
                "INSERT INTO shards VALUES (?, ?, ?, ?, ?, ?)",
                [
                    [
                        manifest.dataset,
                        manifest.version,
                        storage.join(version_dir, s.path),
                        s.rows,
                        s.bytes,
                        s.sha256,
                    ]
                    for s in manifest.shards
                ],
            )
            cursor.execute("COMMIT")

    def versions(self, dataset: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM versions"
        params: list[Any] = []
        if dataset:
            sql += " WHERE dataset = ?"
            params.append(dataset)
        cursor = self.connection.execute(sql + " ORDER BY dataset, version", params)
        columns = [d[0] for d in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    def resolve(self, dataset: str | None, version: str | None) -> tuple[str, str]:
        """The (dataset, version) a query means: the latest validated version unless one is named."""
        datasets = [
            row[0] for row in self.connection.execute("SELECT DISTINCT dataset FROM versions").fetchall()
        ]
        if dataset is None:
            if len(datasets) != 1:
                raise CatalogError(f"name a dataset with --dataset; the catalog has {sorted(datasets)}")
            dataset = datasets[0]
        if version is None:
            row = self.connection.execute(
                "SELECT max(version) FROM versions WHERE dataset = ? AND validation_passed", [dataset]
            ).fetchone()
            version = row[0] if row else None
        elif version.isdigit():
            version = f"v{int(version):04d}"
        found = self.connection.execute(
            "SELECT count(*) FROM versions WHERE dataset = ? AND version = ?", [dataset, version]
        ).fetchone()
        if version is None or not found or found[0] == 0:
            raise CatalogError(f"no published version {version or '(validated)'} of dataset {dataset!r}")
        return dataset, version

    def shard_paths(self, dataset: str, version: str) -> list[str]:
        rows = self.connection.execute(
            "SELECT path FROM shards WHERE dataset = ? AND version = ? ORDER BY path", [dataset, version]
        ).fetchall()
        return [row[0] for row in rows]

    def latest_shards(self, dataset: str) -> list[str]:
        """Shard paths of a dataset's latest validated version; empty if it has none yet."""
        try:
            dataset, version = self.resolve(dataset, None)
        except CatalogError:
            return []
        return self.shard_paths(dataset, version)

    def exact_hashes(self, dataset: str) -> set[str]:
        """Exact hashes in a dataset's latest validated version; empty if it has none yet."""
        return set(PublishedHashes(self.latest_shards(dataset)).load().astype(str))

    def query(
        self, sql: str, dataset: str | None = None, version: str | None = None
    ) -> duckdb.DuckDBPyRelation:
        """Runs SQL with a view `samples` over the chosen version's shards."""
        dataset, version = self.resolve(dataset, version)
        source = read_parquet_sql(self.shard_paths(dataset, version))
        self.connection.execute(f"CREATE OR REPLACE TEMP VIEW samples AS SELECT * FROM {source}")
        return self.connection.sql(sql)


class PublishedHashes:
    """The exact hashes of some published shards, for membership tests in a pipeline's workers.

    Only the shard paths are pickled with a DoFn; each worker reads the `exact_hash` column itself
    (through Beam's filesystems, so gs:// and s3:// shards are read like local ones) into one sorted
    array of fixed-width bytes: about 32 bytes per published sample, not a Python set's ~150."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = list(paths)
        self._sorted: np.ndarray | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"paths": self.paths, "_sorted": None}

    def __bool__(self) -> bool:
        return bool(self.paths)

    def load(self) -> np.ndarray:
        """The distinct hashes, sorted (read once per process)."""
        if self._sorted is None:
            parts = []
            for path in self.paths:
                with storage.open_read(path) as handle:
                    column = pq.ParquetFile(handle).read(columns=["exact_hash"]).column(0)
                parts.append(np.array([h.encode() for h in column.drop_null().to_pylist()], dtype=bytes))
            self._sorted = np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype="S1")
        return self._sorted

    def __contains__(self, exact_hash: object) -> bool:
        hashes = self.load()
        if not isinstance(exact_hash, str) or not hashes.size:
            return False
        key = exact_hash.encode()
        if len(key) > hashes.dtype.itemsize:  # longer than every published hash: not one of them
            return False
        index = int(np.searchsorted(hashes, key))
        return index < hashes.size and hashes[index] == key
