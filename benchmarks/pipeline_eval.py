"""End-to-end cost of the pipeline beyond de-identification, on MedQuAD answers as notes.

    .venv/bin/python benchmarks/pipeline_eval.py [--notes 8000] [--rounds 1]

The first `--notes` non-empty MedQuAD answers are written as one JSONL file of {id, text}; then, in
the same run, `medcurate deid text` and `medcurate run` (default settings) process that same file,
each as the command users type, timed from start to exit. The rounds alternate the two commands,
so that a change in machine load falls on both; the figures are the sums over rounds. The last line
prints the ratio of the whole run to de-identification alone.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MEDQUAD = DATA / "web" / "medquad" / "medquad.jsonl.gz"


def write_notes(path: Path, limit: int) -> int:
    """The first `limit` non-empty answers as JSONL notes; returns how many were written."""
    written = 0
    with gzip.open(MEDQUAD, "rt") as source, path.open("w") as target:
        for row in map(json.loads, source):
            if written >= limit:
                break
            if row["answer"].strip():
                target.write(json.dumps({"id": f"note{written:06d}", "text": row["answer"]}) + "\n")
                written += 1
    return written


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):  # 1: published, but validation flagged something
        sys.exit(f"{' '.join(command[3:5])} failed:\n{done.stderr[-4000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--notes", type=int, default=8000, help="how many MedQuAD answers")
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds of the two commands")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="medcurate-pipeline-eval-"))
    try:
        notes = work / "notes.jsonl"
        count = write_notes(notes, args.notes)
        size_mb = notes.stat().st_size / 1e6
        medcurate = [sys.executable, "-m", "medcurate.cli"]
        print(f"{count} notes ({size_mb:.1f} MB), {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
        deid_s = run_s = 0.0
        for round_ in range(args.rounds):
            deid = timed(
                [*medcurate, "deid", "text", "--input", str(notes), "--output", str(work / "deid.jsonl")]
            )
            output = work / f"out{round_}"
            run = timed(
                [*medcurate, "run", "--input", str(notes), "--output", str(output), "--dataset", "notes"]
            )
            shutil.rmtree(output, ignore_errors=True)
            deid_s, run_s = deid_s + deid, run_s + run
            print(
                f"round {round_ + 1}: deid text {deid:.1f} s, run {run:.1f} s, load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"run / deid text: {run_s / deid_s:.2f} (run {run_s:.1f} s, deid text {deid_s:.1f} s, "
        f"{count} notes, {args.rounds} round(s))"
    )


if __name__ == "__main__":
    main()
