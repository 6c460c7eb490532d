"""The whole pipeline at scale on generated notes: time and peak memory per document.

    .venv/bin/python benchmarks/pipeline_scale.py [--sizes 100000,200000,400000] [--workers 0]
        [--set KEY=VALUE ...]

Small sizes (`--sizes 4000,8000,16000`) take minutes and show the slope: what each added document
costs, which is what must stay small for the largest sizes to fit.

Each size is one `medcurate run` (the command as users run it, default runner settings: one worker
process per core) over generated clinical-style notes of about 1 KB, written as JSONL files of
4,000 notes. The notes are invented (names, towns, dates, record numbers from fixed lists), with
about 5% exact and 10% near copies, so that every stage works: signals, de-identification,
deduplication, review routing and publishing. Peak RSS is that of the whole process tree (the
command and its worker processes), sampled every 0.5 s (PSS: shared pages count once). The last line prints peak RSS per
document at the largest size, how much the peak grows per document added between the smallest and
the largest size (what the corpus costs, apart from the fixed cost of the processes and their
models), and how far time per document moves across sizes (max/min - 1).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import psutil

NOTES_PER_FILE = 4_000
FIRST = ["Avery", "Bryn", "Corin", "Dalia", "Emrys", "Farah", "Gideon", "Halvard", "Ilse", "Joran"]
LAST = ["Quillfeather", "Marrowby", "Thistlewood", "Ashgrove", "Penhallow", "Voskuijlen", "Orrin"]
TOWNS = ["Eastbrook Falls", "Mirewick", "Port Calloway", "Stonemere", "Upper Dunhollow"]
FINDINGS = [
    "The patient reports intermittent chest discomfort radiating to the left arm on exertion.",
    "Blood pressure was elevated at the last two visits despite adherence to the current regimen.",
    "Auscultation revealed clear breath sounds bilaterally without wheezes or crackles.",
    "Laboratory results show a mild normocytic anemia and a normal metabolic panel.",
    "She denies fever, chills, night sweats or unintentional weight loss over the past month.",
    "The abdomen is soft and non-tender with normal bowel sounds in all four quadrants.",
    "An electrocardiogram showed normal sinus rhythm without acute ischemic changes.",
    "He was counselled on smoking cessation and agreed to start nicotine replacement therapy.",
    "Metformin was continued and the dose of lisinopril was increased to twenty milligrams daily.",
    "Follow-up imaging is recommended in six months to reassess the small pulmonary nodule.",
    "The wound is healing well with no erythema, discharge or signs of infection.",
    "Physical therapy was arranged twice weekly to improve strength and range of motion.",
]


def note(rng: random.Random) -> str:
    """One invented note of about 1 KB with the identifiers a real note carries."""
    name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    header = (
        f"Patient {name}, MRN {rng.randint(10**6, 10**7 - 1)}, seen on "
        f"{rng.randint(1, 12)}/{rng.randint(1, 28)}/20{rng.randint(10, 25)} in {rng.choice(TOWNS)}."
    )
    body = " ".join(rng.choice(FINDINGS) for _ in range(rng.randint(9, 12)))
    return f"{header} {body} Signed by Dr. {rng.choice(LAST)}."


def generate(folder: Path, size: int, seed: int = 7) -> int:
    """Writes `size` notes as JSONL files; returns the bytes written. Same size, same files."""
    rng = random.Random(seed)
    written: list[str] = []
    total = 0
    folder.mkdir(parents=True, exist_ok=True)
    for start in range(0, size, NOTES_PER_FILE):
        lines = []
        for _ in range(min(NOTES_PER_FILE, size - start)):
            roll = rng.random()
            if written and roll < 0.05:
                text = rng.choice(written)  # exact copy
            elif written and roll < 0.15:
                words = rng.choice(written).split()
                words[rng.randrange(len(words))] = "notably"  # near copy: one word changed
                text = " ".join(words)
            else:
                text = note(rng)
                written = [*written[-999:], text]
            lines.append(json.dumps({"text": text}))
        body = "\n".join(lines) + "\n"
        (folder / f"notes-{start // NOTES_PER_FILE:05d}.jsonl").write_text(body)
        total += len(body)
    return total


class TreeRss:
    """Peak resident memory of a process and all its descendants, sampled in a thread. Each
    process counts its proportional share (PSS) of the pages it shares with others, so a page
    shared between the command and a forked child counts once, not twice."""

    def __init__(self, pid: int, interval_s: float = 0.5) -> None:
        self.root = psutil.Process(pid)
        self.interval_s = interval_s
        self.peak = 0
        self.peak_command = 0  # the command alone (the runner, its shuffles and side inputs)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            total = 0
            try:
                for process in [self.root, *self.root.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        pss = process.memory_full_info().pss
                        total += pss
                        if process is self.root:
                            self.peak_command = max(self.peak_command, pss)
            except psutil.Error:
                break
            self.peak = max(self.peak, total)
            self._stop.wait(self.interval_s)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def medcurate(*args: str) -> list[str]:
    """The command line of `medcurate` from the interpreter running this benchmark."""
    return [sys.executable, "-m", "medcurate.cli", *args]


def run_size(size: int, workers: int, work: Path, overrides: Sequence[str] = ()) -> dict[str, float]:
    inputs, output = work / f"in-{size}", work / f"out-{size}"
    started = time.perf_counter()
    data_bytes = generate(inputs, size)
    generated_s = time.perf_counter() - started
    command = medcurate(
        "run",
        "--input",
        str(inputs),
        "--output",
        str(output),
        "--dataset",
        "scale",
        "--set",
        f"runner.direct_num_workers={workers}",
        *(arg for override in overrides for arg in ("--set", override)),
    )
    load_before = os.getloadavg()
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    rss = TreeRss(process.pid)
    out, _ = process.communicate()
    seconds = time.perf_counter() - started
    peak = rss.stop()
    load_after = os.getloadavg()
    if process.returncode != 0:
        sys.exit(f"run of {size} documents failed:\n{out[-4000:]}")
    published = next(
        (line.split()[-1] for line in out.splitlines() if line.strip().startswith("published ")), "?"
    )
    shutil.rmtree(inputs, ignore_errors=True)
    shutil.rmtree(output, ignore_errors=True)
    return {
        "documents": size,
        "input_mb": data_bytes / 1e6,
        "generate_s": generated_s,
        "seconds": seconds,
        "ms_per_doc": 1000 * seconds / size,
        "peak_rss_mb": peak / 2**20,
        "peak_command_mb": rss.peak_command / 2**20,
        "rss_kb_per_doc": peak / 1024 / size,
        "published": float(published.replace(",", "")) if published != "?" else float("nan"),
        "load_before": load_before[0],
        "load_after": load_after[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100000,200000,400000", help="comma-separated document counts")
    parser.add_argument("--workers", type=int, default=0, help="runner.direct_num_workers (0: one per core)")
    parser.add_argument("--work-dir", type=Path, help="where inputs and outputs go (default: a temp folder)")
    parser.add_argument("--set", action="append", default=[], help="run config KEY=VALUE (repeatable)")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    work = Path(tempfile.mkdtemp(prefix="medcurate-scale-", dir=args.work_dir))
    print(f"cores {os.cpu_count()}, workers {args.workers or os.cpu_count()}, sizes {sizes}", flush=True)
    results = []
    try:
        for size in sizes:
            result = run_size(size, args.workers, work, args.set)
            previous = results[-1] if results else None
            results.append(result)
            marginal = (
                f", {(result['peak_rss_mb'] - previous['peak_rss_mb']) * 1024 / (size - previous['documents']):+.2f}"
                " KB per document added since the last size"
                if previous and size != previous["documents"]
                else ""
            )
            print(
                f"{size:>9,} docs ({result['input_mb']:.0f} MB): {result['seconds']:8.1f} s, "
                f"{result['ms_per_doc']:.2f} ms/doc, peak RSS {result['peak_rss_mb']:,.0f} MB "
                f"({result['rss_kb_per_doc']:.2f} KB/doc; command alone {result['peak_command_mb']:,.0f} MB), published {result['published']:,.0f}, "
                f"load average {result['load_before']:.1f} -> {result['load_after']:.1f}{marginal}",
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    per_doc = [result["ms_per_doc"] for result in results]
    spread = max(per_doc) / min(per_doc) - 1
    smallest, largest = results[0], results[-1]
    added = largest["documents"] - smallest["documents"]
    growth = (largest["peak_rss_mb"] - smallest["peak_rss_mb"]) * 1024 / added if added else float("nan")
    print(
        f"peak RSS per document {largest['rss_kb_per_doc']:.2f} KB at {largest['documents']:,} documents "
        f"({growth:.2f} KB per added document); time per document flat within {100 * spread:.1f}% "
        f"({min(per_doc):.2f}-{max(per_doc):.2f} ms)"
    )


if __name__ == "__main__":
    main()
