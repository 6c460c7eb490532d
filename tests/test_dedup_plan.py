"""Dedup decided out of core (dedup.plan) follows the rules of the Beam shuffles it replaces, and
gives exactly their decisions."""

from __future__ import annotations

import pickle
import random
import tempfile
from collections import defaultdict
from pathlib import Path

import apache_beam as beam
import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that

from medcurate.dedup import lsh
from medcurate.dedup.beam import (
    KNOWN,
    NODES,
    SHINGLES,
    ClusterDecisions,
    Fingerprint,
    document_frequencies,
    small_records,
)
from medcurate.dedup.boilerplate import DocumentFrequencies, pack_payload
from medcurate.dedup.config import DedupConfig
from medcurate.dedup.core import EXACT, NEAR, key_id, node_key
from medcurate.dedup.normalize import exact_text_hash
from medcurate.dedup.plan import (
    ID_SCHEMA,
    IDS_PREFIX,
    KNOWN_PREFIX,
    KNOWN_SCHEMA,
    NODE_ROWS,
    NODE_SCHEMA,
    NODES_PREFIX,
    VERDICT_SCHEMA,
    VERDICTS_FILE,
    DedupPlanner,
    PlanDedupFn,
    dropped_ids,
    known_row,
    node_row,
    shard_verdicts,
)
from medcurate.pipelines.staged import RecordWriter, WriteRecordsFn
from medcurate.schemas.sample import new_sample
from medcurate.warehouse.catalog import PublishedHashes

CONFIG = DedupConfig(threshold=0.7, shingle="word", ngram=3)


def _write(path: Path, rows: list[tuple], schema: pa.Schema) -> str:
    pq.write_table(
        pa.Table.from_pylist([dict(zip(schema.names, r, strict=True)) for r in rows], schema), path
    )
    return str(path)


def test_plan_gives_the_pairs_edges_and_repeats_of_the_in_memory_rules(tmp_path: Path) -> None:
    """Random band keys from a small alphabet make buckets of every size, some past
    ALL_PAIRS_MAX_BUCKET (a star there), and exact twins; both rules are applied here by hand."""
    rng = random.Random(3)
    nodes = []
    for index in range(300):
        exact = f"{rng.randrange(250):016x}"
        key = node_key(f"doc{index:04d}", rng.random(), rng.randrange(50, 500), exact)
        bands = [b"t" + bytes([band]) + bytes([rng.randrange(40)]) for band in range(3)]
        nodes.append((key, "text", exact, bands, b"\x01"))
    nodes.append((node_key("img0", None, 10, "f" * 16), "image", "f" * 16, [], None))  # undecodable
    nodes.append((node_key("bare", None, 0, "e" * 16), "text", "e" * 16, [], b"\x01\x02"))  # no bands
    ids = [(key_id(node[0]), f"s.parquet:0:{row}") for row, node in enumerate(nodes)]
    ids.append(("doc0007", "s.parquet:1:5"))  # the same source record read a second time
    half = len(nodes) // 2  # two files of nodes, as two bundles would write
    files = {
        NODES_PREFIX: [
            _write(tmp_path / f"{NODES_PREFIX}-{i}.parquet", [node_row(n) for n in part], NODE_SCHEMA)
            for i, part in enumerate((nodes[:half], nodes[half:]))
        ],
        IDS_PREFIX: [_write(tmp_path / f"{IDS_PREFIX}-0.parquet", ids, ID_SCHEMA)],
    }
    with duckdb.connect() as con, tempfile.TemporaryDirectory() as spill:
        planner = DedupPlanner(con, CONFIG, spill, files)
        planner.plan()
        pairs = con.execute("SELECT a, b FROM pairs").fetchall()
        edges = con.execute("SELECT a, b FROM edges").fetchall()
        planner.write_verdicts(str(tmp_path / VERDICTS_FILE))

    expected_pairs, by_exact = set(), defaultdict(set)
    buckets = defaultdict(list)
    for key, _, exact, bands, _ in nodes[:300]:
        by_exact[exact].add(key)
        for band in bands:
            buckets[band].append(key)
    for members in buckets.values():
        expected_pairs.update(lsh.candidate_pairs(members))
    assert any(len(set(m)) > lsh.ALL_PAIRS_MAX_BUCKET for m in buckets.values())
    assert sorted(pairs) == sorted(expected_pairs)
    exact_edges = {(min(keys), key) for keys in by_exact.values() for key in keys if key != min(keys)}
    assert sorted(edges) == sorted(exact_edges)
    # No decisions yet (nothing was verified): only the second copy of the record read twice.
    assert pq.read_table(tmp_path / VERDICTS_FILE).to_pylist() == [
        {"file": "s.parquet", "position": "s.parquet:1:5", "id": "doc0007", "cluster": None}
        | {"size": None, "reason": None, "repeat": True}
    ]


def test_a_shard_reads_the_verdicts_of_its_own_files_only(tmp_path: Path) -> None:
    """Verdicts sorted by staged file, many row groups: a shard gets exactly its files' rows, and
    row groups outside their range are not read."""
    rows = [
        (f"f{file:03d}.parquet", f"f{file:03d}.parquet:0:{row}", f"id{file}-{row}")
        + ((f"id{file}-0", 2, None if row == 0 else NEAR, False) if row < 2 else (None, None, None, True))
        for file in range(60)
        for row in range(3)
    ]
    path = tmp_path / VERDICTS_FILE
    table = pa.Table.from_pylist(
        [dict(zip(VERDICT_SCHEMA.names, r, strict=True)) for r in rows], VERDICT_SCHEMA
    )
    pq.write_table(table, path, row_group_size=10)
    mine = shard_verdicts(str(path), {"f007.parquet", "f041.parquet"})
    assert mine == {
        "f007.parquet:0:0": (("id7-0", 2, None), False),
        "f007.parquet:0:1": (("id7-0", 2, NEAR), False),
        "f007.parquet:0:2": (None, True),
        "f041.parquet:0:0": (("id41-0", 2, None), False),
        "f041.parquet:0:1": (("id41-0", 2, NEAR), False),
        "f041.parquet:0:2": (None, True),
    }
    assert shard_verdicts(str(path), {"other.parquet"}) == {}
    assert dropped_ids(str(path)) == {f"id{file}-1" for file in range(60)}


PHRASES = [
    "The ward round noted steady recovery after the hip replacement and a plan for early walking.",
    "Her inhaler technique was reviewed and a spacer was given to use with the morning dose.",
    "Fluid balance was positive overnight so the infusion rate was lowered by the night team.",
    "He reports poor sleep since the move to the new flat and low mood on most days.",
    "The dressing was changed and the graft site looks pink and healthy with no discharge.",
    "Bloods show the potassium back in range after two days of oral supplements.",
    "The dietitian suggested smaller meals more often and a supplement drink at bedtime.",
    "Physiotherapy will continue daily with stairs practice before discharge home.",
    "A repeat chest film is booked for next week to follow the right lower lobe shadow.",
    "The family meeting agreed on a care package with two visits a day from the district nurses.",
]


def _notes(count: int, seed: int = 11) -> list[dict]:
    """Invented notes with exact copies, copies with one word changed, and unrelated notes, as the
    scale benchmark generates them; one source record read twice (same id, same text)."""
    rng = random.Random(seed)
    texts: list[str] = []
    for index in range(count):
        roll, source = rng.random(), rng.choice(texts) if texts else ""
        words = source.split()
        if words and roll < 0.25:  # a copy, one word changed in some
            if roll >= 0.1:
                words[rng.randrange(len(words))] = "notably"
            texts.append(" ".join(words) if roll >= 0.1 else source)
            continue
        phrases = " ".join(rng.choice(PHRASES) for _ in range(rng.randint(4, 7)))
        texts.append(f"Note {index} from clinic {rng.randrange(9)}. {phrases}")
    samples = [
        new_sample(
            id=f"n{index:04d}",
            source_kind="clinical_note",
            modality="text",
            source_uri=f"mem://n{index:04d}",
            text=text,
            quality_score=round(rng.random(), 3),
        )
        for index, text in enumerate(texts)
    ]
    return [*samples, dict(samples[5])]


def _verdict_decisions(path: str) -> list[tuple[str, tuple]]:
    """(sample id, decision) of a verdicts file, once per id (its rows are per staged copy)."""
    rows = pq.read_table(path).to_pylist()
    return sorted(
        {(r["id"], (r["cluster"], r["size"], r["reason"])) for r in rows if r["cluster"] is not None}
    )


@pytest.mark.slow
@pytest.mark.parametrize("config", [CONFIG, DedupConfig()], ids=["word-trigrams", "defaults"])
def test_planned_decisions_equal_the_shuffled_ones(tmp_path: Path, config: DedupConfig) -> None:
    """Exact and near copies, a sample already published and a record read twice: the verdicts
    file holds exactly the decisions of `ClusterDecisions`, and there are some of each kind."""
    samples = _notes(160)
    known = {exact_text_hash(samples[17]["text"])[0]}
    folder = str(tmp_path / "dedup")
    with BeamTestPipeline(runner="FnApiRunner") as pipeline:
        shuffled = small_records(
            pipeline | "Shuffled" >> beam.Create(samples) | "Fp" >> Fingerprint(config, known)
        )
        # A record read twice is decided twice (the same decision): once per id, as the verdicts.
        expected = shuffled | "Shuffle" >> ClusterDecisions(config) | "PerId" >> beam.Distinct()
        staged = pipeline | "Staged" >> beam.Create(samples) | "FpStaged" >> Fingerprint(config, known)
        ids = [(sample["id"], f"s.parquet:0:{row}") for row, sample in enumerate(samples)]
        verdicts = (
            (
                staged[NODES]
                | "Nodes" >> beam.ParDo(WriteRecordsFn(folder, NODES_PREFIX, NODE_SCHEMA, node_row)),
                pipeline
                | "Ids" >> beam.Create(ids)
                | "WriteIds" >> beam.ParDo(WriteRecordsFn(folder, IDS_PREFIX, ID_SCHEMA)),
                staged[KNOWN]
                | "Known" >> beam.ParDo(WriteRecordsFn(folder, KNOWN_PREFIX, KNOWN_SCHEMA, known_row)),
            )
            | beam.Flatten()
            | beam.combiners.ToList()
            | beam.ParDo(
                PlanDedupFn(config, folder), document_frequencies(staged[SHINGLES], config.df_sketch_bits)
            )
        )
        planned = verdicts | "Read" >> beam.FlatMap(_verdict_decisions)
        assert_that(
            (expected, planned) | "Both" >> beam.Flatten() | beam.combiners.Count.PerElement(),
            _each_twice,
        )
    rows = pq.read_table(Path(folder) / VERDICTS_FILE).to_pylist()
    reasons = {row["reason"] for row in rows}
    assert {EXACT, NEAR, None} <= reasons
    assert {row["id"] for row in rows if row["reason"] == EXACT and row["cluster"] == row["id"]} >= {"n0017"}
    # One of the two copies of the record read twice goes as a repeat (the later in position order).
    assert [row["position"] for row in rows if row["repeat"]] == ["s.parquet:0:5"]


def _each_twice(counted: list) -> None:
    """Every decision came once from each path (and there are some)."""
    assert counted and all(times == 2 for _, times in counted), counted


def test_published_hashes_are_read_in_the_worker_not_pickled(tmp_path: Path) -> None:
    """Only shard paths travel with a DoFn; membership is exact (hashes of other lengths, prefixes
    and nulls included) once a process has read the shards."""
    published = [f"{index:032x}" for index in range(0, 3000, 3)]
    paths = []
    for part in range(2):
        path = tmp_path / f"part-{part}.parquet"
        column = [*published[part::2], None]
        pq.write_table(
            pa.table({"exact_hash": pa.array(column, pa.string()), "id": ["x"] * len(column)}), path
        )
        paths.append(str(path))
    hashes = PublishedHashes(paths)
    assert f"{6:032x}" in hashes and f"{2997:032x}" in hashes
    assert f"{7:032x}" not in hashes and f"{6:031x}" not in hashes and f"{6:033x}" not in hashes
    assert None not in hashes
    shipped = pickle.dumps(hashes)
    assert len(shipped) < 1000 and published[5].encode() not in shipped
    assert f"{9:032x}" in pickle.loads(shipped)
    assert not PublishedHashes([]) and "a" not in PublishedHashes([])


def _plan_generated_nodes(folder: Path, count: int, seed: int, near_pairs: bool, query: str) -> list[tuple]:
    """`count` texts with 1.3 KB payloads written as the pipeline writes them, in pairs that share
    their bands (and, with `near_pairs`, their payload: near copies), decided by the planner; the
    rows of `query` over the planner's tables."""
    rng = np.random.default_rng(seed)
    path = str(folder / f"{NODES_PREFIX}-0.parquet")
    writer = RecordWriter(path, NODE_SCHEMA, node_row, NODE_ROWS)
    payload = b""
    for index in range(count):
        if index % 2 == 0 or not near_pairs:
            payload = pack_payload(
                rng.integers(0, 2**32, 128, dtype=np.uint32),
                np.sort(rng.integers(0, 2**32, 200, dtype=np.uint32)),
                np.empty(0, np.uint32),
            )
        exact = f"{index:016x}"
        bands = [b"t" + bytes([band]) + (index // 2).to_bytes(8, "little") for band in range(3)]
        writer.write((node_key(f"d{index:06d}", 0.5, 1000, exact), "text", exact, bands, payload))
    writer.close()
    ids = _write(
        folder / f"{IDS_PREFIX}-0.parquet", [(f"d{i:06d}", f"s:0:{i}") for i in range(count)], ID_SCHEMA
    )
    with tempfile.TemporaryDirectory() as spill, duckdb.connect(f"{spill}/plan.duckdb") as con:
        planner = DedupPlanner(con, DedupConfig(), spill, {NODES_PREFIX: [path], IDS_PREFIX: [ids]})
        planner.decide(DocumentFrequencies())
        return con.execute(query).fetchall()


def test_payloads_of_many_candidates_fit_the_memory_limit(tmp_path: Path) -> None:
    """30,000 texts with 1.3 KB payloads, all candidates: the planner verifies them within its 64 MB
    (node files in small row groups; one 30,000-row group ran out of memory)."""
    assert _plan_generated_nodes(tmp_path, 30_000, 1, False, "SELECT count(*) FROM pairs") == [(15_000,)]


@pytest.mark.slow
def test_near_copies_of_many_nodes_are_decided_within_the_memory_limit(tmp_path: Path) -> None:
    """120,000 texts with 1.3 KB payloads (150 MB, twice the planner's memory limit), in pairs of
    near copies: every pair is verified and decided (one kept, one dropped), and the planner's joins
    and sorts fit its memory (payloads are read from disk by row; a join or sort of payloads in
    DuckDB ran out of memory from about 40,000 candidates)."""
    count_ = 120_000
    decided = _plan_generated_nodes(
        tmp_path,
        count_,
        2,
        True,
        "SELECT (SELECT count(*) FROM pairs), count(*), count(reason), count(DISTINCT cluster),"
        " min(size), max(size) FROM decisions",
    )
    assert decided == [(count_ // 2, count_, count_ // 2, count_ // 2, 2, 2)]
