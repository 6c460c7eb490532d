"""The routing policy: which samples go to physician review and why, as a pure function.

Audit sampling hashes the sample id with the seed instead of calling `random`, so the same
sample is audited (or not) in every run and on every worker.
"""

from __future__ import annotations

import hashlib
from typing import Any

from medcurate.annotators.config import ReviewConfig
from medcurate.schemas.sample import Modality, ReviewStatus

LOW_DEID_CONFIDENCE = "low_deid_confidence"
IMAGE_TEXT_UNCHECKED = "deid:burned_in_text_unchecked"  # set by privacy/images.py
IMAGE_TEXT = "image_text"
QUALITY_UNCERTAIN = "quality_uncertain"
AUDIT = "audit"
MODEL_UNCERTAIN = "model_uncertain"  # active learning: the relevance or quality model is least sure
# Where image de-id records the pixel boxes it painted over (privacy/images.py).
DEID_BOXES = "deid.boxes"

# Statuses a routing decision may change: reviewed samples keep their verdict.
_ROUTABLE = {ReviewStatus.NOT_REQUIRED.value, ReviewStatus.PENDING.value}


def audit_draw(sample_id: str, seed: int) -> float:
    """A uniform number in [0, 1) fixed by the sample id and seed."""
    digest = hashlib.sha256(f"{seed}:{sample_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def review_reasons(
    sample: dict[str, Any], config: ReviewConfig, uncertain_ids: frozenset[str] = frozenset()
) -> list[str]:
    """Reason codes under which `config` sends this sample to review (empty: publish directly).
    `uncertain_ids`: the samples the active-learning budget picked (see `model_uncertainty`)."""
    reasons = []
    confidence = sample.get("deid_confidence")
    if confidence is not None and confidence < config.min_deid_confidence:
        reasons.append(LOW_DEID_CONFIDENCE)
    if (
        config.review_images_with_text
        and sample.get("modality") == Modality.IMAGE
        and (sample.get("redactions") or (sample.get("metadata") or {}).get(DEID_BOXES))
    ):
        reasons.append(IMAGE_TEXT)
    quality = sample.get("quality_score")
    if quality is not None and config.quality_uncertain_low <= quality <= config.quality_uncertain_high:
        reasons.append(QUALITY_UNCERTAIN)
    if sample["id"] in uncertain_ids:
        reasons.append(MODEL_UNCERTAIN)
    fraction = config.audit_fraction_by_kind.get(sample.get("source_kind") or "", config.audit_fraction)
    if audit_draw(sample["id"], config.seed) < fraction:
        reasons.append(AUDIT)
    return reasons


def route_sample(
    sample: dict[str, Any], config: ReviewConfig, uncertain_ids: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """A copy of `sample` marked `pending` with its reasons appended, or left as it was.

    Samples already pending (de-id could not check an image's text) stay pending; accepted or
    rejected samples keep their verdict.
    """
    if sample.get("review_status") not in _ROUTABLE:
        return sample
    existing = list(sample.get("review_reasons") or [])
    new = [reason for reason in review_reasons(sample, config, uncertain_ids) if reason not in existing]
    if not new and sample.get("review_status") != ReviewStatus.PENDING:
        return sample
    routed = dict(sample)
    routed["review_reasons"] = existing + new
    routed["review_status"] = ReviewStatus.PENDING.value
    return routed


def uncertainty(score: float | None) -> float:
    """1 at a probability of 0.5, 0 at 0 or 1: how little a model knows about a sample."""
    return 0.0 if score is None else 1.0 - abs(2.0 * float(score) - 1.0)


def model_uncertainty(sample: dict[str, Any]) -> float:
    """How unsure the relevance and quality heads are about a sample (the larger of the two)."""
    return max(uncertainty(sample.get("relevance_score")), uncertainty(sample.get("quality_score")))


def active_selection(
    candidates: list[tuple[str, float]], budget: int, audit_share: float, seed: int
) -> dict[str, str]:
    """Spend `budget` reviews: `audit_share` of it on a random audit (keeps the accuracy estimate
    unbiased), the rest on the candidates the models are least sure of. Returns {id: reason}.

    `candidates` are (sample id, uncertainty). The audit draw hashes the id like `audit_draw`, so a
    sample's chance never depends on what else is in the batch.
    """
    budget = min(budget, len(candidates))
    audits = round(budget * audit_share)
    by_draw = sorted(candidates, key=lambda c: audit_draw(c[0], seed))
    chosen = {sample_id: AUDIT for sample_id, _ in by_draw[:audits]}
    for sample_id, _ in sorted(candidates, key=lambda c: (-c[1], c[0])):
        if len(chosen) >= budget:
            break
        chosen.setdefault(sample_id, MODEL_UNCERTAIN)
    return chosen
