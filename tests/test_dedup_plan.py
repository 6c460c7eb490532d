"""Dedup's grouping planned out of core (dedup.plan) follows the rules of the Beam shuffles it replaces."""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.pvalue import TaggedOutput
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that

from medcurate.dedup import lsh
from medcurate.dedup.beam import (
    KNOWN,
    NODES,
    SHINGLES,
    CandidatePayloads,
    ClusterDecisions,
    Fingerprint,
    PlannedDecisions,
    small_records,
)
from medcurate.dedup.config import DedupConfig
from medcurate.dedup.core import key_id, node_key
from medcurate.dedup.plan import (
    EDGES,
    ID_SCHEMA,
    IDS_PREFIX,
    LOCATED,
    NODE_SCHEMA,
    NODES_PREFIX,
    PAIRS,
    REPEATS,
    UNBANDED,
    PlanDedupFn,
    node_row,
)
from medcurate.pipelines.staged import WriteRecordsFn
from medcurate.schemas.sample import new_sample

CONFIG = DedupConfig(threshold=0.7, shingle="word", ngram=3)


def _plan(tmp_path: Path, nodes: list[tuple], ids: list[tuple[str, str]]) -> dict[str, list]:
    """PlanDedupFn's outputs by tag, over node and id files written as the pipeline writes them."""
    half = len(nodes) // 2  # two files of each kind, as two bundles would write
    paths = []
    for index, part in enumerate((nodes[:half], nodes[half:])):
        path = tmp_path / f"{NODES_PREFIX}-{index}.parquet"
        pq.write_table(
            pa.Table.from_pylist(
                [dict(zip(NODE_SCHEMA.names, node_row(n), strict=True)) for n in part], NODE_SCHEMA
            ),
            path,
        )
        paths.append(str(path))
    path = tmp_path / f"{IDS_PREFIX}-0.parquet"
    pq.write_table(pa.Table.from_pylist([{"id": i, "position": p} for i, p in ids], ID_SCHEMA), path)
    paths.append(str(path))
    outputs: dict[str, list] = defaultdict(list)
    for output in PlanDedupFn(CONFIG, str(tmp_path / "samples")).process(paths):
        assert isinstance(output, TaggedOutput)
        outputs[output.tag].append(output.value)
    return outputs


def test_plan_gives_the_pairs_edges_and_repeats_of_the_in_memory_rules(tmp_path: Path) -> None:
    """Random band keys from a small alphabet make buckets of every size, some past
    ALL_PAIRS_MAX_BUCKET (a star there), and exact twins; both rules are applied here by hand."""
    rng = random.Random(3)
    nodes = []
    for index in range(300):
        exact = f"{rng.randrange(250):016x}"
        key = node_key(f"doc{index:04d}", rng.random(), rng.randrange(50, 500), exact)
        bands = [b"t" + bytes([band]) + bytes([rng.randrange(40)]) for band in range(3)]
        nodes.append((key, "text", exact, bands, None))
    nodes.append((node_key("img0", None, 10, "f" * 16), "image", "f" * 16, [], None))  # undecodable
    nodes.append((node_key("bare", None, 0, "e" * 16), "text", "e" * 16, [], b"\x01\x02"))  # no bands
    ids = [(key_id(node[0]), f"s.parquet:0:{row}") for row, node in enumerate(nodes)]
    ids.append(("doc0007", "s.parquet:1:5"))  # the same source record read a second time
    outputs = _plan(tmp_path, nodes, ids)

    expected_pairs, by_exact = set(), defaultdict(set)
    buckets = defaultdict(list)
    for key, _, exact, bands, _ in nodes[:300]:
        by_exact[exact].add(key)
        for band in bands:
            buckets[band].append(key)
    for members in buckets.values():
        expected_pairs.update(lsh.candidate_pairs(members))
    assert any(len(set(m)) > lsh.ALL_PAIRS_MAX_BUCKET for m in buckets.values())
    assert sorted(outputs[PAIRS]) == sorted(expected_pairs)
    exact_edges = {(min(keys), key) for keys in by_exact.values() for key in keys if key != min(keys)}
    assert sorted(outputs[EDGES]) == sorted(exact_edges)
    assert sorted(outputs[UNBANDED]) == sorted(
        [(nodes[300][0], (True, None)), (nodes[301][0], (False, b"\x01\x02"))]
    )
    assert outputs[REPEATS] == ["s.parquet:1:5"]
    candidates = {key for pair in expected_pairs for key in pair}
    located = {(row, key) for (_, _), (row, key) in outputs[LOCATED]}
    expected = {(row, node[0]) for row, node in enumerate(nodes) if node[0] in candidates}
    expected |= {(5, key) for key in candidates if key_id(key) == "doc0007"}
    assert located == expected


def _payload_of(located: tuple, samples: dict[str, dict]) -> list[tuple[str, bytes]]:
    """A located candidate's payload, computed again from the sample (standing in for its staged row)."""
    key = located[1][1]
    candidates = CandidatePayloads(CONFIG)
    candidates.setup()
    return list(candidates.payloads([dict(samples[key_id(key)])], {key}))


LEAFLET = (
    "Hand washing with soap for twenty seconds removes most germs from the skin, and drying the hands "
    "on a clean towel afterwards keeps them from coming back before the next meal or visit."
)


@pytest.mark.slow
def test_planned_decisions_equal_the_shuffled_ones(tmp_path: Path) -> None:
    texts = {
        "a": LEAFLET,
        "b": LEAFLET.upper(),  # exact twin after normalisation
        "c": LEAFLET.replace("twenty", "thirty"),  # near twin
        "d": "Shingles vaccination is offered to adults over seventy at the local practice.",
    }
    samples = [
        new_sample(id=key, source_kind="web", modality="text", source_uri=f"mem://{key}", text=text)
        for key, text in texts.items()
    ]
    folder = str(tmp_path / "dedup")
    with BeamTestPipeline(runner="FnApiRunner") as pipeline:
        shuffled = small_records(pipeline | "Shuffled" >> beam.Create(samples) | "Fp" >> Fingerprint(CONFIG))
        expected = shuffled | "Shuffle" >> ClusterDecisions(CONFIG)
        bare = pipeline | "Bare" >> beam.Create(samples) | "FpBare" >> Fingerprint(CONFIG, payloads=False)
        ids = [(sample["id"], f"s.parquet:0:{row}") for row, sample in enumerate(samples)]
        plan = (
            (
                bare[NODES]
                | "Nodes" >> beam.ParDo(WriteRecordsFn(folder, NODES_PREFIX, NODE_SCHEMA, node_row)),
                pipeline
                | "Ids" >> beam.Create(ids)
                | "WriteIds" >> beam.ParDo(WriteRecordsFn(folder, IDS_PREFIX, ID_SCHEMA)),
            )
            | beam.Flatten()
            | beam.combiners.ToList()
            | beam.ParDo(PlanDedupFn(CONFIG, folder)).with_outputs(PAIRS, EDGES, UNBANDED, LOCATED, REPEATS)
        )
        planned = {
            **{tag: plan[tag] for tag in (PAIRS, EDGES, UNBANDED)},
            "signatures": plan[LOCATED] | beam.FlatMap(_payload_of, {s["id"]: s for s in samples}),
            "shingles": bare[SHINGLES],
            "known": bare[KNOWN],
        } | "Planned" >> PlannedDecisions(CONFIG)
        assert_that(
            (expected, planned) | "Both" >> beam.Flatten() | beam.combiners.Count.PerElement(),
            lambda counted: _each_twice(counted),
        )


def _each_twice(counted: list) -> None:
    """Every decision came once from each path (and there are some)."""
    assert counted and all(times == 2 for _, times in counted), counted
