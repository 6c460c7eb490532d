"""Bytes per document entering each shuffle of the Beam deduplication, on generated notes.

    .venv/bin/python benchmarks/dedup_shuffle_bytes.py [--docs 1000] [--pipeline]

Without `--pipeline`, deduplication alone (`Fingerprint` and `ClusterDecisions`, payloads carried by
the nodes, as `assign_clusters` runs it); with it, the whole `medcurate run` on the notes of
`pipeline_scale.py` (in one process), where deduplication computes candidates' payloads again from
the staged samples.

The local runner holds every shuffle's data in memory until the stage after it runs, so what
enters each GroupByKey (CoGroupByKey included: it is a Flatten then a GroupByKey) is what a
document costs there. Each element is measured as its pickled size (protocol 5), counted per
enclosing transform; the last lines print bytes per document per shuffle and their total. The
notes are those of `pipeline_scale.py` (about 1 KB, 5% exact and 10% near copies).
"""

from __future__ import annotations

import argparse
import pickle
import random
import sys
import tempfile
from collections import Counter
from pathlib import Path

import apache_beam as beam
import apache_beam.transforms.util as beam_util
from apache_beam.metrics.metric import MetricsFilter

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipeline_scale import generate, note

from medcurate.cli import main as medcurate
from medcurate.dedup.beam import ClusterDecisions, Fingerprint, small_records
from medcurate.dedup.config import DedupConfig
from medcurate.schemas.sample import new_sample

NAMESPACE = "shuffle_bytes"


def _measured_group_by_key() -> type:
    """A GroupByKey that first counts the pickled bytes of what enters it, under its label (a
    composite: the runner would drop a step inside a primitive's own expansion)."""
    original = beam.GroupByKey

    class Measured(beam.PTransform):
        def expand(self, pcoll):
            label = pcoll.pipeline._current_transform().full_label.removeprefix("Dedup/")
            label = label.replace("/CoGroupByKeyImpl/Measured", "")

            def measure(element, label=label):
                beam.metrics.Metrics.counter(NAMESPACE, label).inc(len(pickle.dumps(element, 5)))
                return element

            return pcoll | "MeasureBytes" >> beam.Map(measure) | "Group" >> original()

    return Measured


def generated(docs: int, seed: int = 7) -> list[dict]:
    """`docs` invented notes, with exact and near copies, as samples."""
    rng = random.Random(seed)
    texts: list[str] = []
    for _ in range(docs):
        roll = rng.random()
        if texts and roll < 0.05:
            text = rng.choice(texts)
        elif texts and roll < 0.15:
            text = rng.choice(texts) + " Reviewed again at the follow-up visit."
        else:
            text = note(rng)
        texts.append(text)
    return [
        new_sample(source_kind="note", modality="text", source_uri=f"gen#{i}", text=text, quality_score=0.5)
        for i, text in enumerate(texts)
    ]


def dedup_alone(docs: int) -> beam.runners.runner.PipelineResult:
    config = DedupConfig()
    with beam.Pipeline(runner="FnApiRunner") as pipeline:
        samples = pipeline | beam.Create(generated(docs), reshuffle=False)
        fingerprinted = samples | "Fingerprint" >> Fingerprint(config)
        small_records(fingerprinted) | "Dedup" >> ClusterDecisions(config)
    return pipeline.result


def whole_pipeline(docs: int) -> beam.runners.runner.PipelineResult:
    results = []
    run = beam.Pipeline.run

    def keep_result(self, *args, **kwargs):
        results.append(run(self, *args, **kwargs))
        return results[-1]

    beam.Pipeline.run = keep_result
    with tempfile.TemporaryDirectory(prefix="medcurate-shuffle-bytes-") as work:
        generate(Path(work) / "in", docs)
        runner = ["--set", "runner.direct_num_workers=1", "--set", "runner.direct_running_mode=in_memory"]
        code = medcurate(
            ["run", "--input", f"{work}/in", "--output", f"{work}/out", "--dataset", "b", *runner]
        )
    if code:
        sys.exit(f"medcurate run failed ({code})")
    return results[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--pipeline", action="store_true", help="the whole `medcurate run`")
    args = parser.parse_args()
    measured = _measured_group_by_key()
    beam.GroupByKey = measured  # what the pipeline and Beam's CoGroupByKey look up at build time
    beam_util.GroupByKey = measured
    result = whole_pipeline(args.docs) if args.pipeline else dedup_alone(args.docs)
    totals: Counter[str] = Counter()
    for counter in result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]:
        totals[counter.key.metric.name] += counter.committed or 0
    for label, value in sorted(totals.items(), key=lambda item: -item[1]):
        print(f"{label:<60} {value / args.docs:8.0f} B/doc")
    print(f"{'total':<60} {sum(totals.values()) / args.docs:8.0f} B/doc ({args.docs} docs)")


if __name__ == "__main__":
    main()
