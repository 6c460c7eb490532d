"""Inter-rater agreement, consensus verdicts and per-reviewer statistics over review records.

Krippendorff's alpha handles any number of reviewers per sample and missing answers, so one
measure serves every field: nominal for choices (verdict, specialty), interval for ratings.

Everything here counts distinct reviewers: a reviewer who annotated a sample twice (a replayed
request, a second submit) has one review, their latest. A duplicate never counts as a second
physician, so it can neither settle a sample alone nor inflate agreement.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Sequence
from typing import Any, Literal

Metric = Literal["nominal", "interval"]

BOX_KEYS = ("x", "y", "width", "height", "type")
DECISION_OF_VOTE = {"accept": "accepted", "reject": "rejected"}

# Fields compared between reviewers, with the distance that suits each.
AGREEMENT_FIELDS: dict[str, Metric] = {
    "verdict": "nominal",
    "accuracy": "interval",
    "specialty": "nominal",
    "image_quality": "interval",
}


log = logging.getLogger("medcurate.review.agreement")


def _recency(record: dict[str, Any]) -> tuple[str, int]:
    return (record.get("created_at") or "", record.get("annotation_id") or 0)


def latest_per_reviewer(records: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """One record per (sample, reviewer), the latest (by created_at, then annotation id), in input
    order; and how many duplicates were set aside."""
    latest: dict[tuple[Any, Any], dict[str, Any]] = {}
    for record in records:
        key = (record["sample_id"], record["reviewer_id"])
        if key not in latest or _recency(record) >= _recency(latest[key]):
            latest[key] = record
    kept = {id(record) for record in latest.values()}
    return [r for r in records if id(r) in kept], len(records) - len(latest)


def _distinct(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    distinct, duplicates = latest_per_reviewer(records)
    if duplicates:
        log.warning(
            "%d duplicate review(s) ignored: same reviewer, same sample (the latest counts)", duplicates
        )
    return distinct


def _disagreement_sum(values: Sequence[Any], metric: Metric) -> float:
    """Sum of distances over all ordered pairs i != j, in O(n)."""
    n = len(values)
    if metric == "nominal":
        return n * n - sum(c * c for c in Counter(values).values())
    total = sum(float(v) for v in values)
    squares = sum(float(v) ** 2 for v in values)
    return 2 * n * squares - 2 * total * total


def krippendorff_alpha(
    units: Iterable[Sequence[Hashable | None]], metric: Metric = "nominal"
) -> float | None:
    """Alpha over units (one list of reviewers' values per sample; None = no answer).

    None when there is nothing to compare or no variation at all (alpha is undefined then).
    """
    pairable = [[v for v in unit if v is not None] for unit in units]
    pairable = [unit for unit in pairable if len(unit) >= 2]
    n = sum(len(unit) for unit in pairable)
    if n < 2:
        return None
    observed = sum(_disagreement_sum(unit, metric) / (len(unit) - 1) for unit in pairable) / n
    expected = _disagreement_sum([v for unit in pairable for v in unit], metric) / (n * (n - 1))
    if expected == 0:
        return None
    return 1 - observed / expected


def agreement(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per field: alpha, the metric used, and how many samples had at least two reviewers' answers."""
    by_sample: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in latest_per_reviewer(records)[0]:
        by_sample[record["sample_id"]].append(record)
    report = {}
    for field, metric in AGREEMENT_FIELDS.items():
        units = [[r.get(field) for r in group] for group in by_sample.values()]
        compared = sum(sum(v is not None for v in unit) >= 2 for unit in units)
        if compared:
            report[field] = {
                "alpha": krippendorff_alpha(units, metric),
                "metric": metric,
                "samples": compared,
            }
    return report


def _decide(votes: Counter, reviews: int, required: int, rule: str) -> str:
    if reviews < required:
        return "incomplete"
    accept, reject = votes["accept"], votes["reject"]
    if rule == "unanimous":
        if reject == 0 and accept > 0:
            return "accepted"
        if accept == 0 and reject > 0:
            return "rejected"
        return "adjudicate"
    if accept > reject:
        return "accepted"
    if reject > accept:
        return "rejected"
    return "adjudicate"


def consensus(
    records: Sequence[dict[str, Any]], rule: Literal["unanimous", "majority"], required: int
) -> list[dict[str, Any]]:
    """One verdict per sample; disagreements the rule cannot settle are flagged `adjudicate`.

    Surviving PHI is the union of what any reviewer marked: one physician seeing PHI is enough.
    `reviews` and the votes count distinct reviewers (see latest_per_reviewer).
    """
    by_sample: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in _distinct(records):
        by_sample[record["sample_id"]].append(record)
    verdicts = []
    for sample_id, group in by_sample.items():
        votes = Counter(r["verdict"] for r in group if r.get("verdict"))
        accuracies = [r["accuracy"] for r in group if r.get("accuracy") is not None]
        qualities = [r["image_quality"] for r in group if r.get("image_quality") is not None]
        specialties = Counter(r["specialty"] for r in group if r.get("specialty"))
        spans = {(s["start"], s["end"], s["type"]) for r in group for s in r.get("phi_spans") or []}
        boxes = {tuple(b[key] for key in BOX_KEYS) for r in group for b in r.get("phi_boxes") or []}
        verdicts.append(
            {
                "sample_id": sample_id,
                "project": group[0]["project"],
                "decision": _decide(votes, len(group), required, rule),
                "reviews": len(group),
                "accept_votes": votes["accept"],
                "reject_votes": votes["reject"],
                "accuracy": sum(accuracies) / len(accuracies) if accuracies else None,
                "specialty": specialties.most_common(1)[0][0] if specialties else None,
                "image_quality": sum(qualities) / len(qualities) if qualities else None,
                "phi_spans": [{"start": s, "end": e, "type": t} for s, e, t in sorted(spans)],
                "phi_boxes": [
                    dict(zip(("x", "y", "width", "height", "type"), b, strict=True)) for b in sorted(boxes)
                ],
            }
        )
    return verdicts


def reviewer_stats(
    records: Sequence[dict[str, Any]], verdicts: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Per reviewer: reviews done, accept rate, median time, agreement with the settled consensus."""
    settled = {v["sample_id"]: v["decision"] for v in verdicts if v["decision"] in ("accepted", "rejected")}
    by_reviewer: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for record in latest_per_reviewer(records)[0]:
        by_reviewer[record["reviewer_id"]].append(record)
    stats = []
    for reviewer_id, group in sorted(by_reviewer.items()):
        with_verdict = [r for r in group if r.get("verdict")]
        compared = [r for r in with_verdict if r["sample_id"] in settled]
        agreeing = sum(settled[r["sample_id"]] == DECISION_OF_VOTE.get(r["verdict"]) for r in compared)
        times = sorted(r["lead_time_s"] for r in group if r.get("lead_time_s") is not None)
        stats.append(
            {
                "reviewer_id": reviewer_id,
                "reviewer": group[0].get("reviewer"),
                "reviews": len(group),
                "accept_rate": sum(r["verdict"] == "accept" for r in with_verdict) / len(with_verdict)
                if with_verdict
                else None,
                "agreement_with_consensus": agreeing / len(compared) if compared else None,
                "median_lead_time_s": times[len(times) // 2] if times else None,
            }
        )
    return stats
