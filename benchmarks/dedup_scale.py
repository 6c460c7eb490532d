"""Dedup at scale on generated documents: time, peak memory and shuffle bytes per document.

    .venv/bin/python benchmarks/dedup_scale.py [--sizes 250000,500000,1000000]

Each size runs in its own process (so peak RSS is that size's own) through DeduplicateSamples on
the in-process FnApiRunner, which holds every shuffle in memory. Documents (about 1 KB) are
generated inside the pipeline from a fixed vocabulary; about 10% are edited copies (near
duplicates) and 5% exact copies. Reported per size: wall time, peak RSS, documents kept, and the
bytes per document crossing the dedup shuffles (node keys, band keys, candidate pairs, signatures,
component edges; no text), computed from the run's element counters times the encoded size of
each kind of element; the final join, which carries each sample once, is stated separately. The
stage's own working memory outside the runner (fingerprinting batch by batch) is measured with
tracemalloc over the whole corpus: it must not grow with the corpus.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator

import numpy as np

VOCAB = 20_000
SHARD = 5_000


def generate(shard: int, count: int) -> Iterator[tuple[str, str]]:
    """(id, text) of one shard of the corpus; the same shard is the same in every run."""
    rng = np.random.default_rng(shard)
    vocab = np.array([f"term{i}" for i in range(VOCAB)])
    originals: list[np.ndarray] = []
    for index in range(count):
        roll = rng.random()
        if originals and roll < 0.15:
            words = originals[int(rng.integers(len(originals)))].copy()
            if roll < 0.10:  # near duplicate: 2% of the words replaced
                spots = rng.integers(0, len(words), size=max(1, len(words) // 50))
                words[spots] = vocab[rng.integers(0, VOCAB, size=len(spots))]
        else:
            words = vocab[rng.zipf(1.2, size=int(rng.integers(80, 240))) % VOCAB]
            originals = [*originals[-499:], words]
        yield f"s{shard:05d}d{index:06d}", " ".join(words)


def _sample(pair: tuple[str, str]) -> dict:
    from medcurate.schemas.sample import new_sample

    doc_id, text = pair
    return new_sample(id=doc_id, source_kind="web", modality="text", source_uri=f"gen:{doc_id}", text=text)


def _shards(size: int) -> list[tuple[int, int]]:
    return [(shard, min(SHARD, size - start)) for shard, start in enumerate(range(0, size, SHARD))]


def shuffle_bytes(counters: dict[str, int], documents: int) -> dict[str, float]:
    """Bytes per document entering each dedup shuffle, from counters x encoded element sizes."""
    from apache_beam.coders import FastPrimitivesCoder

    from medcurate.dedup.beam import node_key
    from medcurate.dedup.config import DedupConfig
    from medcurate.dedup.lsh import optimal_bands

    config = DedupConfig()
    size = FastPrimitivesCoder().encode
    key = node_key("s00000d000000", None, 1000, "f" * 32)
    sig = bytes(4 * config.num_perm)
    bands, _ = optimal_bands(config.threshold, config.num_perm)
    pairs = counters.get("dedup/candidate_pairs", 0)
    edges = counters.get("dedup/verified_edges", 0) + counters.get("dedup/exact_edges", 0)
    members = counters.get("dedup/component_members", 0)
    per_doc = {
        "exact hash groups": len(size(("text:" + "f" * 32, key))),
        "LSH bands": bands * len(size((b"t\x00" + bytes(8), key))),
        "candidate pairs (distinct + 2 joins)": 3 * pairs / documents * len(size((key, key))),
        "signatures into the 2 verify joins": 2 * len(size((key, sig)))
        + pairs / documents * len(size((key, (key, sig)))),
        "components (rounds x 3 shuffles, upper bound)": config.cc_rounds
        * 3
        * 2
        * edges
        / documents
        * len(size((key, key))),
        "payloads + component groups": len(size((key, ("text", sig))))
        + members / documents * len(size((key, (key, "text", sig)))),
    }
    return {name: round(value, 1) for name, value in per_doc.items()}


def run_size(size: int) -> dict:
    import apache_beam as beam
    from apache_beam.metrics.metric import MetricsFilter

    from medcurate.dedup.beam import DeduplicateSamples
    from medcurate.dedup.config import DedupConfig
    from medcurate.pipelines.stage import SAMPLES

    start = time.perf_counter()
    pipeline = beam.Pipeline(runner="FnApiRunner")
    outputs = (
        pipeline
        | beam.Create(_shards(size))
        | "Generate" >> beam.FlatMapTuple(generate)
        | "Samples" >> beam.Map(_sample)
        | DeduplicateSamples(DedupConfig())
    )
    outputs[SAMPLES] | "Discard" >> beam.Filter(lambda _: False)
    result = pipeline.run()
    result.wait_until_finish()
    seconds = time.perf_counter() - start
    counters = {
        c.key.metric.name: c.committed
        for c in result.metrics().query(MetricsFilter().with_namespace("medcurate"))["counters"]
    }
    per_doc = shuffle_bytes(counters, size)
    return {
        "documents": size,
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "kept": counters.get("dedup/kept", 0),
        "shuffle_bytes_per_doc": per_doc,
        "dedup_shuffle_bytes_per_doc": round(sum(per_doc.values()), 1),
    }


def stage_working_memory(size: int) -> float:
    """Peak MiB traced while fingerprinting the whole corpus batch by batch, as the DoFn does."""
    from medcurate.dedup.beam import _Fingerprint
    from medcurate.dedup.config import DedupConfig

    config = DedupConfig()
    fn = _Fingerprint(config, frozenset())
    fn.setup()
    tracemalloc.start()
    batch: list[dict] = []
    for shard, count in _shards(size):
        for pair in generate(shard, count):
            batch.append(_sample(pair))
            if len(batch) == config.batch_size:
                for _ in fn.process(batch):
                    pass
                batch = []
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return round(peak / 2**20, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="250000,500000,1000000")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--memory-only", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_size(args.one)))
        return
    if args.memory_only:
        print(json.dumps(stage_working_memory(args.memory_only)))
        return
    rows = []
    for size in map(int, args.sizes.split(",")):
        run = subprocess.run(
            [sys.executable, __file__, "--one", str(size)], capture_output=True, text=True, check=True
        )
        row = json.loads(run.stdout.strip().splitlines()[-1])
        memory = subprocess.run(
            [sys.executable, __file__, "--memory-only", str(size)], capture_output=True, text=True, check=True
        )
        row["stage_working_mb"] = json.loads(memory.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(
            f"{size:>9} docs  {row['seconds']:8.1f} s  ({size / row['seconds']:6.0f} docs/s)  "
            f"peak RSS {row['peak_rss_mb']:6d} MB ({row['peak_rss_mb'] * 2**20 / size:6.0f} B/doc)  "
            f"kept {row['kept']}  stage working memory {row['stage_working_mb']} MB  "
            f"dedup shuffle {row['dedup_shuffle_bytes_per_doc']} B/doc",
            flush=True,
        )
    base = rows[0]
    for row in rows[1:]:
        scale = row["documents"] / base["documents"]
        print(
            f"x{scale:g} documents: time x{row['seconds'] / base['seconds']:.2f}, "
            f"peak RSS x{row['peak_rss_mb'] / base['peak_rss_mb']:.2f}, "
            f"stage working memory x{row['stage_working_mb'] / base['stage_working_mb']:.2f}"
        )
    print("dedup shuffle bytes per document by shuffle:", json.dumps(rows[-1]["shuffle_bytes_per_doc"]))
    print("final join: each sample crosses one shuffle once (its own size), joined with a ~60 B decision")


if __name__ == "__main__":
    main()
