"""Active-learning review routing vs. random audit, with simulated physicians.

Physicians are simulated by the gold labels of public labelled data (health vs. not-health texts,
see quality/public_data.py: MedQuAD, medical_question_pairs, ASQ-PHI against news/blog paragraphs and
general synthetic sentences). A fixed quarter of the sources is the test split. Starting from 0
reviews, each round spends N reviews chosen (a) by `annotators.routing.active_selection`
(uncertainty + random audit share) or (b) at random, retrains the fastText head on all reviews so
far and measures AUC on the test split. The last line is the ratio of reviews active routing needs
over those random needs to reach the AUC random reaches with its full budget (lower is better).

    python benchmarks/quality_eval.py [--data ../shared/data] [--round 25] [--budget 1000] [--seeds 2]

About 7 minutes on 2 cores (each retraining runs in a fresh process, see quality/models.py).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np

from medcurate.annotators.routing import active_selection, uncertainty
from medcurate.quality.models import positive_probability, roc_auc, split_by_group, train_fasttext
from medcurate.quality.public_data import relevance_examples


def curve(pool, test, strategy: str, round_size: int, budget: int, audit_share: float, seed: int):
    """AUC on `test` after each round of `round_size` simulated reviews."""
    rng = random.Random(seed)
    reviewed: list[int] = []
    remaining = list(range(len(pool)))
    points = []
    labels = [e.label for e in test]
    texts = [e.text for e in test]
    model = None
    while len(reviewed) < budget:
        if model is None or strategy == "random":
            picked = rng.sample(remaining, min(round_size, len(remaining)))
        else:
            scores = positive_probability(model, [pool[i].text for i in remaining])
            candidates = [(str(i), uncertainty(s)) for i, s in zip(remaining, scores, strict=True)]
            picked = [int(i) for i in active_selection(candidates, round_size, audit_share, seed)]
        reviewed += picked
        chosen = set(picked)
        remaining = [i for i in remaining if i not in chosen]
        examples = [pool[i] for i in reviewed]
        if len({e.label for e in examples}) < 2:
            points.append((len(reviewed), 0.5))
            continue
        model = train_fasttext(examples)
        points.append((len(reviewed), roc_auc(labels, positive_probability(model, texts))))
    return points


def reviews_to_reach(points, target: float) -> int | None:
    return next((n for n, auc in points if auc >= target), None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--round", type=int, default=25, help="reviews per round")
    parser.add_argument("--budget", type=int, default=1000, help="reviews in all, per strategy")
    parser.add_argument("--audit-share", type=float, default=0.1, help="random audit share of active rounds")
    parser.add_argument("--seeds", type=int, default=2, help="repetitions (different pool orders), averaged")
    args = parser.parse_args(argv)
    if not Path(args.data).is_dir():
        print(f"public data folder {args.data} not found", file=sys.stderr)
        return 2
    examples = relevance_examples(args.data)
    pool, test = split_by_group(examples, 0.25, seed=1)
    print(
        f"pool {len(pool)} texts, test {len(test)} texts ({sum(e.label for e in test)} health), "
        f"rounds of {args.round}, budget {args.budget}, audit share {args.audit_share:.0%} of active rounds"
    )
    started = time.perf_counter()
    curves = {"active": [], "random": []}
    for seed in range(args.seeds):
        for strategy in curves:
            curves[strategy].append(
                curve(pool, test, strategy, args.round, args.budget, args.audit_share, seed)
            )
    mean = {
        strategy: [(runs[0][i][0], float(np.mean([run[i][1] for run in runs]))) for i in range(len(runs[0]))]
        for strategy, runs in curves.items()
    }
    print("reviews  AUC random  AUC active")
    for (n, random_auc), (_, active_auc) in zip(mean["random"], mean["active"], strict=True):
        print(f"{n:7d}  {random_auc:10.4f}  {active_auc:10.4f}")
    target = mean["random"][-1][1]
    random_needs = reviews_to_reach(mean["random"], target)
    active_needs = reviews_to_reach(mean["active"], target)
    print(f"target AUC {target:.4f} (random, full budget); {time.perf_counter() - started:.0f} s")
    if active_needs is None:
        print(
            f"active/random reviews to reach AUC {target:.4f}: active never reached it within {args.budget}"
        )
        return 1
    print(
        f"active/random reviews to reach AUC {target:.4f}: {active_needs}/{random_needs} = "
        f"{active_needs / random_needs:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
