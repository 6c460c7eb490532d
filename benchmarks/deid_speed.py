"""Whole-command speed: `medcurate deid text` against vanilla Presidio doing the same job.

    .venv/bin/python benchmarks/deid_speed.py [--sets physionet,asq,synth] [--rounds 3] [--limit N]

Both are whole processes timed from start to exit on the same JSONL of {id, text}: start-up and
model loading, reading, analysing, anonymising, writing. Vanilla is Presidio's AnalyzerEngine with
its default recognizers and the same spaCy model (batched, as `BatchAnalyzerEngine` does) and
Presidio's AnonymizerEngine. Rounds are taken in turns so that load from other work falls on both;
each figure is the median. One process each, BLAS pinned to one thread (a Beam worker's share).
Prints figures only, never document text.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from deid_eval import TEXT_SETS, vanilla_engine

ONE_THREAD = {name: "1" for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}


def vanilla_command(source: Path, target: Path) -> None:
    from presidio_anonymizer import AnonymizerEngine

    batch = vanilla_engine()
    anonymizer = AnonymizerEngine()
    rows = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = [row["text"] for row in rows]
    with target.open("w", encoding="utf-8") as out:
        for row, text, results in zip(
            rows, texts, batch.analyze_iterator(texts, language="en", batch_size=32), strict=True
        ):
            anonymized = anonymizer.anonymize(text=text, analyzer_results=results)
            spans = [{"start": r.start, "end": r.end, "type": r.entity_type} for r in results]
            out.write(json.dumps({"id": row["id"], "text": anonymized.text, "spans": spans}) + "\n")


def _timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, env={**os.environ, **ONE_THREAD}, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="physionet,asq,synth")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--limit", type=int, default=0, help="first N documents of each set (0: all)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="each set this many times over (start-up weighs less on a larger input)",
    )
    parser.add_argument("--set", action="append", default=[], help="override for ours, e.g. deid.tagger=off")
    parser.add_argument("--vanilla", nargs=2, type=Path, metavar=("IN", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.vanilla:
        # The same start as `medcurate`: torch and transformers, which spaCy and Presidio would
        # import whenever installed, kept out, so that the ratio does not depend on them.
        from medcurate.cli import skip_unused_frameworks

        skip_unused_frameworks()
        vanilla_command(*args.vanilla)
        return 0
    overrides = [part for value in args.set for part in ("--set", value)]
    print("whole command wall time, median of interleaved rounds; docs/s = documents / wall seconds")
    print(
        f"{'set':12s}{'docs':>7s}{'ours s':>9s}{'vanilla s':>11s}{'ours docs/s':>13s}{'vanilla':>9s}{'ratio':>8s}"
    )
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.sets.split(","):
            docs = TEXT_SETS[name]()
            docs = (docs[: args.limit] if args.limit else docs) * args.repeat
            source = Path(scratch) / f"{name}.jsonl"
            source.write_text(
                "".join(json.dumps({"id": i, "text": d.text}) + "\n" for i, d in enumerate(docs))
            )
            ours = [sys.executable, "-m", "medcurate.cli", "deid", "text", "--input", str(source)]
            ours += ["--output", str(Path(scratch) / "ours.jsonl"), *overrides]
            vanilla = [
                sys.executable,
                __file__,
                "--vanilla",
                str(source),
                str(Path(scratch) / "vanilla.jsonl"),
            ]
            times: dict[str, list[float]] = {"ours": [], "vanilla": []}
            for _ in range(args.rounds):
                times["ours"].append(_timed(ours))
                times["vanilla"].append(_timed(vanilla))
            mine, theirs = statistics.median(times["ours"]), statistics.median(times["vanilla"])
            print(
                f"{name:12s}{len(docs):7d}{mine:9.1f}{theirs:11.1f}{len(docs) / mine:13.1f}"
                f"{len(docs) / theirs:9.1f}{theirs / mine:8.2f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
