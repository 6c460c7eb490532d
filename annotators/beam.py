"""Beam adapters of the review loop: routing to review, and applying physicians' verdicts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import apache_beam as beam

from medcurate.annotators.config import ReviewConfig
from medcurate.annotators.routing import _ROUTABLE, model_uncertainty, route_sample
from medcurate.annotators.verdicts import apply_verdict, load_verdicts
from medcurate.pipelines.stage import DROPS, SAMPLES, count, emit_event
from medcurate.schemas.events import Drop
from medcurate.schemas.sample import ReviewStatus


def route_and_count(
    sample: dict[str, Any], config: ReviewConfig, uncertain_ids: list[str] | None = None
) -> dict[str, Any]:
    """`route_sample`, counting what goes to review under each reason."""
    routed = route_sample(sample, config, frozenset(uncertain_ids or ()))
    if routed["review_status"] == ReviewStatus.PENDING:
        count("review:pending")
        for reason in routed["review_reasons"]:
            count(f"review:routed/{reason}")
    return routed


class RouteForReview(beam.PTransform):
    """Marks samples that go to physician review; every sample continues to the main output."""

    def __init__(self, config: ReviewConfig) -> None:
        super().__init__()
        self.config = config

    def expand(self, samples: beam.PCollection) -> beam.PCollection:
        budgets = self.config.active_budget_by_kind
        if not any(budgets.values()):
            return samples | "RouteSample" >> beam.Map(route_and_count, self.config)
        picked = (
            samples
            | "Uncertainty" >> beam.FlatMap(uncertainty_by_kind, budgets)
            | "LeastSure" >> LeastSure(budgets)
        )
        return samples | "RouteSample" >> beam.Map(route_and_count, self.config, beam.pvalue.AsList(picked))


class LeastSure(beam.PTransform):
    """Active learning: (source kind, (uncertainty, sample id)) records in; out, per source kind, the
    ids of the `budget` text samples the models are least sure of. Only these records are shuffled."""

    def __init__(self, budgets: dict[str, int]) -> None:
        super().__init__()
        self.budgets = budgets

    def expand(self, records):
        budgets = self.budgets
        return (
            records
            | "Top" >> beam.combiners.Top.PerKey(max(budgets.values()))
            | "WithinBudget" >> beam.FlatMap(lambda kv: [sid for _, sid in kv[1][: budgets[kv[0]]]])
        )


def uncertainty_by_kind(sample: dict[str, Any], budgets: dict[str, int]) -> Iterator[tuple[str, tuple]]:
    """The sample's active-learning record, when its kind has a budget and it can still be routed."""
    kind = sample.get("source_kind")
    if budgets.get(kind) and sample.get("modality") == "text" and sample.get("review_status") in _ROUTABLE:
        yield kind, (model_uncertainty(sample), sample["id"])


def apply_and_count(sample: dict[str, Any], verdicts: dict[str, Any]) -> dict[str, Any] | Drop:
    """The sample after its settled verdict (`apply_verdict`), counted when one applied."""
    result = apply_verdict(sample, verdicts.get(sample["id"]))
    if not isinstance(result, Drop) and result is not sample:
        count(f"review:applied/{result['review_status']}")
    return result


class _ApplyVerdictsFn(beam.DoFn):
    def __init__(self, reviews_dir: str) -> None:
        self.reviews_dir = reviews_dir

    def setup(self) -> None:
        self.verdicts = load_verdicts(self.reviews_dir)

    def process(self, sample: dict[str, Any]) -> Iterator[Any]:
        result = apply_and_count(sample, self.verdicts)
        yield emit_event(result) if isinstance(result, Drop) else result


class ApplyVerdicts(beam.PTransform):
    """Physicians' settled verdicts from earlier reviews: rejected samples leave with a reason,
    accepted ones carry their ratings; samples without a settled verdict pass unchanged."""

    def __init__(self, reviews_dir: str) -> None:
        super().__init__()
        self.reviews_dir = reviews_dir

    def expand(self, samples: beam.PCollection):
        return samples | "Apply" >> beam.ParDo(_ApplyVerdictsFn(self.reviews_dir)).with_outputs(
            DROPS, main=SAMPLES
        )
