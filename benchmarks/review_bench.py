"""Push and pull throughput of the review loop against a real Label Studio, beside a bare SDK import.

Run: .venv/bin/python benchmarks/review_bench.py [--tasks 10000]
Starts its own server on a fresh data folder (about 40 s), pushes N text tasks with predictions
through `push_samples`, imports the same tasks with the bare SDK in batches of 1,000 into another
project, pulls with `pull_reviews`, and prints tasks/s and the push/bare ratio (target >= 0.80).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from medcurate.annotators import server
from medcurate.annotators.config import LabelStudioConfig, ReviewConfig
from medcurate.annotators.projects import TEXT, connect, ensure_project
from medcurate.annotators.pull import pull_reviews
from medcurate.annotators.push import push_samples, sample_to_task
from medcurate.schemas.sample import new_sample

NOTE = (
    "Patient <PERSON> was admitted on <DATE_TIME> with community-acquired pneumonia. Chest X-ray showed "
    "right lower lobe consolidation. Started on ceftriaxone and azithromycin; afebrile after 48 hours. "
)


def make_samples(n: int) -> list[dict]:
    return [
        new_sample(
            source_kind="clinical",
            modality="text",
            source_uri=f"bench://note/{i}",
            text=NOTE * 4,
            language="en",
            quality_score=0.5,
            redactions=[{"start": 8, "end": 16, "type": "PERSON", "score": 0.9}],
            review_status="pending",
            review_reasons=["audit"],
        )
        for i in range(n)
    ]


def bare_import(client, config: ReviewConfig, samples: list[dict]) -> float:
    """Seconds for the bare SDK: the same tasks, batches of 1,000, no lookup, no outbox, no retries."""
    project = ensure_project(client, config.model_copy(update={"text_project": "bench bare sdk"}), TEXT)
    start = time.perf_counter()
    tasks = [sample_to_task(sample, config)[1] for sample in samples]
    for i in range(0, len(tasks), 1000):
        client.projects.import_tasks(project, request=tasks[i : i + 1000], commit_to_project=True)
    return time.perf_counter() - start


def push(client, config: ReviewConfig, samples: list[dict]) -> float:
    start = time.perf_counter()
    pushed = push_samples(samples, config, client)
    assert pushed.sent == len(samples) and pushed.left_in_outbox == 0, pushed
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--bare-first", action="store_true", help="time the bare import before push_samples")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="review-bench-") as tmp:
        ls = LabelStudioConfig(data_dir=str(Path(tmp) / "labelstudio"))
        print("starting Label Studio on a fresh data folder ...", flush=True)
        server.start(ls)
        try:
            config = ReviewConfig(
                label_studio=ls,
                text_project="bench push",
                outbox=f"{tmp}/outbox.jsonl",
                reviews_dir=f"{tmp}/reviews",
            )
            samples = make_samples(args.tasks)
            client = connect(config)

            # The second import meets a bigger database; --bare-first flips the order to check the bias.
            runs = [lambda: bare_import(client, config, samples), lambda: push(client, config, samples)]
            bare_s, push_s = (
                (runs[0](), runs[1]()) if args.bare_first else tuple(reversed([runs[1](), runs[0]()]))
            )

            start = time.perf_counter()
            pulled = pull_reviews(config, client=client)
            pull_s = time.perf_counter() - start
            assert pulled.tasks == args.tasks, pulled.tasks
        finally:
            server.stop(ls)
    bare_rate, push_rate = args.tasks / bare_s, args.tasks / push_s
    print(f"tasks                       {args.tasks}")
    print(f"bare SDK import (1,000/req) {bare_rate:8.0f} tasks/s  ({bare_s:.1f} s)")
    print(f"push_samples                {push_rate:8.0f} tasks/s  ({push_s:.1f} s)")
    print(f"pull_reviews (snapshot)     {args.tasks / pull_s:8.0f} tasks/s  ({pull_s:.1f} s)")
    print(f"push / bare                 {push_rate / bare_rate:8.2f}  (target >= 0.80)")


if __name__ == "__main__":
    main()
