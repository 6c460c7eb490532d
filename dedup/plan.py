"""Deduplication's grouping steps out of core: what groups every document goes through DuckDB over
small Parquet files, not through Beam shuffles.

A Beam shuffle on a local runner is held in memory, so a step that groups a record per document
(nine band keys per text, an exact hash, an id) costs memory per document of the corpus. Instead
the fingerprint pass writes its node records and (id, staged position) pairs to Parquet files
beside the staged samples (`WriteRecordsFn`), and one worker plans from them with DuckDB under a
memory limit (it spills to disk past it): exact-duplicate edges, LSH candidate pairs, image-bucket
edges, the payloads of nodes without bands, where each candidate's sample is staged, and the later
copies of a source record read twice. What comes out is proportional to the duplicates, not to the
corpus, and goes on through the same verification and connected components as before.

The rules are those of the in-memory transforms (`ClusterDecisions`): exact twins joined to the
smallest node key of their (modality, exact hash) group; per band, all pairs of a bucket of up to
`lsh.ALL_PAIRS_MAX_BUCKET` distinct nodes, else a star around its smallest key; image buckets'
pairs within the Hamming radius.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apache_beam as beam
import duckdb
import pyarrow as pa
from apache_beam.pvalue import TaggedOutput

from medcurate.dedup import lsh
from medcurate.dedup.config import DedupConfig
from medcurate.dedup.core import node_key
from medcurate.pipelines.stage import count
from medcurate.pipelines.staged import position_unit
from medcurate.schemas.sample import Modality
from medcurate.warehouse import storage
from medcurate.warehouse.catalog import read_parquet_sql

# What the fingerprint pass writes: one row per node (`Fingerprint`'s NODES records), and one per
# sample deduplication saw (its id and staged position).
NODE_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("modality", pa.string()),
        ("exact", pa.string()),
        ("bands", pa.list_(pa.binary())),
        ("payload", pa.binary()),  # a text's packed payload, when the first pass computed it
        ("phash", pa.uint64()),  # an image's pHash (None: undecodable)
    ]
)
ID_SCHEMA = pa.schema([("id", pa.string()), ("position", pa.string())])
NODES_PREFIX = "nodes"
IDS_PREFIX = "ids"

# Outputs of `PlanDedupFn`.
PAIRS = "pairs"  # (node key, node key): text candidate pairs to verify, distinct
EDGES = "edges"  # (node key, node key): exact-duplicate and verified image edges
UNBANDED = "unbanded"  # (node key, (is an image, payload)): nodes the final decision needs as they are
LOCATED = "located"  # ((staged file, row group), (row, node key)): where candidates' samples are staged
REPEATS = "repeats"  # staged positions of the later copies of a source record read more than once

# Where a node key's sample id starts (the key of an empty id is all prefix).
_ID_OFFSET = len(node_key("", None, 0, ""))
# DuckDB's working memory while planning; past it, it spills to a temporary folder. Measured on
# 400,000 generated text nodes: 104 MB above the worker's own at 64 MB (261 MB at 256 MB, and slower).
MEMORY_LIMIT = "64MB"


def node_row(node: tuple) -> tuple:
    """A `Fingerprint` NODES record as a row of NODE_SCHEMA."""
    key, modality, exact, bands, payload = node
    image = modality == Modality.IMAGE
    return key, str(modality), exact, bands, None if image else payload, payload if image else None


@contextlib.contextmanager
def _local(paths: list[str]) -> Iterator[list[str]]:
    """The files as local paths DuckDB can read: remote ones (gs://) copied to a temporary folder
    first, through Beam's filesystems (which hold the credentials). They are small: ids and keys."""
    if not any(storage.is_remote(path) for path in paths):
        yield paths
        return
    folder = Path(tempfile.mkdtemp(prefix="medcurate-plan-"))
    try:
        local = []
        for index, path in enumerate(paths):
            target = folder / f"{index:06d}.parquet"
            with storage.open_read(path) as source, target.open("wb") as sink:
                shutil.copyfileobj(source, sink, 1 << 20)
            local.append(str(target))
        yield local
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _batches(con: duckdb.DuckDBPyConnection, sql: str) -> Iterator[dict[str, list]]:
    """The query's rows, a few thousand at a time, as columns of Python values."""
    reader = con.sql(sql).to_arrow_reader(10_000)
    for batch in reader:
        yield batch.to_pydict()


class PlanDedupFn(beam.DoFn):
    """All node and id files of a run (one element: their paths, behind a shuffle, so complete)
    -> PAIRS, EDGES, UNBANDED, LOCATED and REPEATS (see above), planned with DuckDB out of core.
    `folder`: where the samples are staged (the positions name files there)."""

    def __init__(self, config: DedupConfig, folder: str) -> None:
        self.config = config
        self.folder = folder

    def process(self, paths: list[str]) -> Iterator[Any]:
        names = {
            prefix: sorted(p for p in paths if p.rsplit("/", 1)[-1].startswith(prefix + "-"))
            for prefix in (NODES_PREFIX, IDS_PREFIX)
        }
        with (
            _local(names[NODES_PREFIX] + names[IDS_PREFIX]) as local,
            tempfile.TemporaryDirectory(prefix="medcurate-duckdb-") as spill,
            duckdb.connect() as con,
        ):
            con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
            con.execute(f"SET temp_directory = '{spill}'")
            con.execute("SET threads = 1")
            con.execute("SET preserve_insertion_order = false")
            node_files, id_files = local[: len(names[NODES_PREFIX])], local[len(names[NODES_PREFIX]) :]
            if node_files:
                con.execute(f"CREATE VIEW nodes AS SELECT * FROM {read_parquet_sql(node_files)}")
                yield from self._plan_nodes(con)
            if id_files:
                con.execute(f"CREATE VIEW ids AS SELECT * FROM {read_parquet_sql(id_files)}")
                yield from self._plan_ids(con, bool(node_files) and self.config.near)

    def _plan_nodes(self, con: duckdb.DuckDBPyConnection) -> Iterator[Any]:
        cfg = self.config
        image = f"'{Modality.IMAGE}'"
        if cfg.exact:
            exact = 0
            for batch in _batches(
                con,
                "WITH twins AS (SELECT modality, exact, min(key) AS root FROM nodes GROUP BY modality, exact"
                " HAVING count(DISTINCT key) > 1) SELECT DISTINCT root, key FROM nodes"
                " JOIN twins USING (modality, exact) WHERE key <> root",
            ):
                exact += len(batch["key"])
                for edge in zip(batch["root"], batch["key"], strict=True):
                    yield TaggedOutput(EDGES, edge)
            count("dedup/exact_edges", exact)
        unbanded = f"modality = {image} OR len(bands) = 0" if cfg.near else "true"
        for batch in _batches(con, f"SELECT key, modality, payload, phash FROM nodes WHERE {unbanded}"):
            for key, modality, payload, phash in zip(*batch.values(), strict=True):
                is_image = modality == Modality.IMAGE
                yield TaggedOutput(UNBANDED, (key, (is_image, phash if is_image else payload)))
        if not cfg.near:
            return
        # Grouped (which spills to disk) before anything is joined: only the members of buckets of
        # two or more are kept, a small table.
        con.execute(
            "CREATE TEMP TABLE members AS WITH banded AS (SELECT DISTINCT band, key FROM"
            f" (SELECT unnest(bands) AS band, key FROM nodes WHERE modality <> {image})),"
            " buckets AS (SELECT band, count(*) AS n, min(key) AS first FROM banded GROUP BY band"
            " HAVING count(*) > 1) SELECT band, key, n, first FROM banded JOIN buckets USING (band)"
        )
        largest = lsh.ALL_PAIRS_MAX_BUCKET
        con.execute(
            "CREATE TEMP TABLE raw_pairs AS"
            " SELECT x.key AS a, y.key AS b FROM members x JOIN members y"
            f" ON x.band = y.band AND x.key < y.key WHERE x.n <= {largest} AND y.n <= {largest}"
            f" UNION ALL SELECT first, key FROM members WHERE n > {largest} AND key <> first"
        )
        count("dedup/candidate_pairs", con.execute("SELECT count(*) FROM raw_pairs").fetchone()[0])
        con.execute("CREATE TEMP TABLE pairs AS SELECT DISTINCT a, b FROM raw_pairs")
        con.execute("DROP TABLE raw_pairs")
        con.execute("DROP TABLE members")
        for batch in _batches(con, "SELECT a, b FROM pairs"):
            for pair in zip(batch["a"], batch["b"], strict=True):
                yield TaggedOutput(PAIRS, pair)
        radius = cfg.image_hamming_radius
        for batch in _batches(
            con,
            "SELECT list(key) AS keys, list(phash) AS hashes FROM (SELECT unnest(bands) AS band, key, phash"
            f" FROM nodes WHERE modality = {image} AND len(bands) > 0) GROUP BY band HAVING count(*) > 1",
        ):
            for keys, hashes in zip(batch["keys"], batch["hashes"], strict=True):
                for edge in lsh.image_edges(list(zip(keys, hashes, strict=True)), radius):
                    yield TaggedOutput(EDGES, edge)

    def _plan_ids(self, con: duckdb.DuckDBPyConnection, near: bool) -> Iterator[Any]:
        for batch in _batches(
            con,
            "SELECT position FROM (SELECT position, row_number() OVER (PARTITION BY id ORDER BY position)"
            " AS copy FROM ids) WHERE copy > 1",
        ):
            for position in batch["position"]:
                yield TaggedOutput(REPEATS, position)
        if not near:
            return
        for batch in _batches(
            con,
            "SELECT ids.position, candidates.key FROM (SELECT a AS key FROM pairs UNION SELECT b FROM pairs)"
            f" AS candidates JOIN ids ON ids.id = substr(candidates.key, {_ID_OFFSET + 1})",
        ):
            for position, key in zip(batch["position"], batch["key"], strict=True):
                (path, index, _), row = position_unit(self.folder, position)
                yield TaggedOutput(LOCATED, ((path, index), (row, key)))
